"""Operators who are not staff: the dashboard's own sign-in page, its permissions
(durable.view_dashboard, durable.operate, durable.respond_pendinginput) and the group
setup the docs describe."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

import durable
from durable.models import PendingInput, WorkflowExecution
from durable.routing import websocket_urlpatterns
from durable.testing import run_until_idle
from tests.web.conftest import PASSWORD, client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db

LOGIN = "/durable/login/"


def _operator(name: str, *codenames: str) -> User:
    """A user who is not staff, in a group with these durable permissions (the docs'
    setup)."""
    group, _ = Group.objects.get_or_create(name=f"group of {name}")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="durable", codename__in=codenames)
    )
    user = User.objects.create_user(name, password=PASSWORD)
    user.groups.add(group)
    return user


@pytest.fixture
def waiting() -> str:
    wid = durable.start(WebReview)
    run_until_idle()
    return wid


def _sign_in(username: str, next_url: str = "") -> tuple[Client, object]:
    client = Client()
    data = {"username": username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client, client.post(LOGIN, data)


def test_anonymous_users_are_sent_to_the_dashboards_sign_in_page(waiting):
    response = Client().get(reverse("durable:execution-detail", args=[waiting]))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=/durable/executions/")
    page = Client().get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert '<form id="sign-in"' in html
    assert 'href="/static/durable/dashboard.css"' in html  # the dashboard's own page
    assert f'value="/durable/executions/{waiting}/"' in html


def test_an_operator_who_is_not_staff_signs_in_and_watches(waiting):
    _operator("watcher", "view_dashboard")
    client, response = _sign_in("watcher", f"/durable/executions/{waiting}/")
    assert response.status_code == 302
    assert response["Location"] == f"/durable/executions/{waiting}/"
    assert client.get(reverse("durable:execution-list")).status_code == 200
    detail = client.get(response["Location"]).content.decode()
    assert "You do not have permission to respond." in detail
    assert reverse("durable:cancel", args=[waiting]) not in detail
    assert reverse("admin:index") not in detail  # no admin link for non-staff
    assert client.get(reverse("durable:metrics")).status_code == 200


def test_signing_in_without_a_next_page_lands_on_the_list():
    _operator("watcher", "view_dashboard")
    _, response = _sign_in("watcher")
    assert response["Location"] == reverse("durable:execution-list")


def test_an_account_without_the_dashboard_permission_is_refused_with_a_reason():
    User.objects.create_user("nobody", password=PASSWORD)
    client, response = _sign_in("nobody")
    assert response.status_code == 200
    assert "may not use the workflow dashboard" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_are_refused():
    _operator("watcher", "view_dashboard")
    client = Client()
    response = client.post(LOGIN, {"username": "watcher", "password": "wrong"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_watcher_gets_a_403_page_that_names_the_missing_permission(waiting):
    client = client_for(_operator("watcher", "view_dashboard"))
    response = client.post(reverse("durable:cancel", args=[waiting]))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="forbidden-reason"' in html
    assert "durable.change_workflowexecution permission (or durable.operate)" in html
    assert durable.get_execution(waiting).status == "waiting"


def test_a_signed_in_user_who_is_not_an_operator_gets_a_403_page(waiting):
    client = client_for(User.objects.create_user("nobody", password=PASSWORD))
    response = client.get(reverse("durable:execution-list"))
    assert response.status_code == 403
    assert "durable.view_dashboard" in response.content.decode()


def test_operate_grants_every_action_but_answering_inputs(waiting):
    client = client_for(_operator("operator", "view_dashboard", "operate"))
    detail = client.get(reverse("durable:execution-detail", args=[waiting])).content.decode()
    assert reverse("durable:cancel", args=[waiting]) in detail
    assert reverse("durable:send-event", args=[waiting]) in detail
    assert "You do not have permission to respond." in detail
    pending = PendingInput.objects.get()
    respond = reverse("durable:respond", args=[waiting, pending.pk])
    assert client.post(respond, {"input-amount": "1"}).status_code == 403
    started = client.post(reverse("durable:start-workflow"), {"workflow": "web_steps"})
    assert started.status_code == 302
    assert (
        client.post(reverse("durable:send-event", args=[waiting]), {"event": "x"}).status_code
        == 302
    )
    assert client.post(reverse("durable:cancel", args=[waiting])).status_code == 302
    assert durable.get_execution(waiting).status == "cancelled"
    retried = client.post(reverse("durable:retry", args=[waiting]), {"from_step": "ask"})
    assert retried.status_code == 302
    assert durable.get_execution(waiting).status == "pending"
    listing = client.get(reverse("durable:execution-list")).content.decode()
    assert 'data-action="cancel"' in listing  # bulk actions too
    assert WorkflowExecution.objects.filter(workflow_name="web_steps").count() == 1


def test_the_respond_permission_lets_an_operator_answer(waiting):
    client = client_for(_operator("approver", "view_dashboard", "respond_pendinginput"))
    pending = PendingInput.objects.get()
    response = client.post(
        reverse("durable:respond", args=[waiting, pending.pk]), {"input-amount": "7"}
    )
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == "completed"
    assert pending.responded_by.username == "approver"
    assert client.post(reverse("durable:cancel", args=[waiting])).status_code == 403


def test_operators_who_are_not_staff_cannot_use_the_admin():
    client = client_for(_operator("operator", "view_dashboard", "operate"))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_signing_out_ends_the_session():
    client, _ = _sign_in(_operator("watcher", "view_dashboard").username)
    response = client.post(reverse("durable:logout"))
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert client.get(reverse("durable:execution-list")).status_code == 302


def test_staff_keep_their_access_with_model_permissions(staff):
    wid = durable.start(WebSteps)
    client = client_for(staff)
    assert client.get(reverse("durable:execution-list")).status_code == 200
    assert client.post(reverse("durable:cancel", args=[wid])).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_live_socket_takes_operators_and_refuses_the_rest():
    router = URLRouter(websocket_urlpatterns)
    watcher = _operator("watcher", "view_dashboard")
    nobody = User.objects.create_user("nobody", password=PASSWORD)

    async def connect(user: User, path: str) -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(router, path)
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(connect)(watcher, "/ws/durable/executions/")[0] is True
    assert async_to_sync(connect)(nobody, "/ws/durable/executions/") == (False, 4003)
    assert async_to_sync(connect)(watcher, "/ws/durable/executions/a%00b/") == (False, 4004)
