"""`DurableBackend.check()` (run by the Tasks framework's system check) reports misconfiguration."""

from __future__ import annotations

import django
import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from durable.tasks.framework import task_backends


def backend_with(**params):
    with override_settings(
        TASKS={"default": {"BACKEND": "durable.tasks.DurableBackend", **params}}
    ):
        return task_backends["default"]


def ids(backend) -> list[str]:
    return [message.id for message in backend.check()]


def test_a_valid_backend_has_no_problems():
    assert ids(task_backends["default"]) == []
    assert ids(task_backends["retrying"]) == []
    assert ids(backend_with(QUEUES=["default", "payments"])) == []


def test_durable_missing_from_installed_apps():
    backend = task_backends["default"]
    apps = [app for app in settings.INSTALLED_APPS if app != "durable"]
    with override_settings(INSTALLED_APPS=apps):
        (message,) = backend.check()
    assert message.id == "durable.E040"
    assert "'durable'" in message.hint


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"retries": 3}, "unknown OPTIONS key(s) retries"),
        ({"max_attempts": 0}, "max_attempts must be an int >= 1"),
        ({"backoff": "sometimes"}, "backoff must be one of"),
        ({"base": -1}, "base must be a finite number >= 0"),
        ("3 attempts", "OPTIONS must be a dict"),
    ],
)
def test_invalid_options(options, problem):
    (message,) = backend_with(OPTIONS=options).check()
    assert message.id == "durable.E041"
    assert problem in message.msg


def test_queues_durable_does_not_configure():
    (message,) = backend_with(QUEUES=["default", "nowhere"]).check()
    assert message.id == "durable.E042"
    assert "nowhere" in message.msg


def test_alias_that_cannot_name_a_workflow():
    with override_settings(TASKS={"a b": {"BACKEND": "durable.tasks.DurableBackend"}}):
        backend = task_backends["a b"]
    assert ids(backend) == ["durable.E043"]


@pytest.mark.skipif(django.VERSION < (6, 0), reason="on Django 5.2 the backport is the framework")
def test_the_backport_installed_beside_djangos_own_tasks_is_w044():
    assert [m.id for m in run_checks(tags=["durable"]) if m.id == "durable.W044"] == []
    with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "django_tasks"]):
        (message,) = [m for m in run_checks(tags=["durable"]) if m.id == "durable.W044"]
    assert "Remove 'django_tasks' from INSTALLED_APPS" in message.hint
