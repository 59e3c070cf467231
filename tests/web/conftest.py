"""Users with every level of access, and clients logged in as them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

import tests.web.workflows  # noqa: F401  (registers the workflows)

PASSWORD = "pw-for-tests"


def _user(
    username: str, *, staff: bool = False, superuser: bool = False, perms: tuple[str, ...] = ()
) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff or superuser)
    user.is_superuser = superuser
    user.save()
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def superuser(db: None) -> User:
    return _user("root", superuser=True)


@pytest.fixture
def staff(db: None) -> User:
    """Staff who may look and act, but not answer pending inputs."""
    return _user(
        "staff",
        staff=True,
        perms=(
            "view_workflowexecution",
            "change_workflowexecution",
            "add_workflowexecution",
            "view_pendinginput",
        ),
    )


@pytest.fixture
def viewer(db: None) -> User:
    """Staff with no permissions at all: may watch the dashboard only."""
    return _user("viewer", staff=True)


@pytest.fixture
def outsider(db: None) -> User:
    return _user("outsider")


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client
