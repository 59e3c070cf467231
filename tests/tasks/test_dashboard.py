"""Task executions show in the dashboard and the admin like any other execution."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from durable.dsl import registry
from durable.testing import run_until_idle
from tests.tasks import tasks as t

pytestmark = pytest.mark.django_db

NAME = "task:default:tests.tasks.tasks.echo"


@pytest.fixture
def client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    return client


def test_the_execution_list_names_the_task(client):
    result = t.echo.enqueue("hello")
    response = client.get(reverse("durable:execution-list"))
    assert response.status_code == 200
    assert NAME in response.content.decode()
    assert result.id in response.content.decode()


def test_the_execution_page_of_a_task_made_in_another_process(client):
    result = t.echo.enqueue("hello")
    run_until_idle()
    # A web process that never enqueued the task makes its workflow from the name.
    registry.unregister(NAME)
    response = client.get(reverse("durable:execution-detail", args=[result.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert NAME in page
    assert 'data-node-id="run"' in page
    assert "hello" in page


def test_the_admin_lists_and_finds_task_executions(client):
    result = t.echo.enqueue("hello")
    response = client.get(reverse("admin:durable_workflowexecution_changelist"))
    assert response.status_code == 200
    assert NAME in response.content.decode()
    response = client.get(reverse("admin:durable_workflowexecution_changelist"), {"q": result.id})
    assert result.id in response.content.decode()


def test_the_list_filters_by_task(client):
    echo = t.echo.enqueue("hello")
    noop = t.noop_task.enqueue()
    registry.unregister(NAME)
    response = client.get(reverse("durable:execution-list"), {"workflow_name": NAME})
    assert response.status_code == 200
    page = response.content.decode()
    assert echo.id in page
    assert noop.id not in page
