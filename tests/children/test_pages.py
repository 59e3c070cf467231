"""Parent and child links on the dashboard execution page and in the admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

import durable
from durable.models import WorkflowExecution
from durable.testing import run_until_idle
from tests.children import workflows as wf

pytestmark = pytest.mark.django_db


@pytest.fixture
def family() -> tuple[WorkflowExecution, WorkflowExecution]:
    wid = durable.start(wf.Parent, {"n": 3})
    run_until_idle()
    parent = WorkflowExecution.objects.get(workflow_id=wid)
    return parent, parent.children.get()


def test_the_dashboard_links_a_parent_and_its_children(admin_client: Client, family) -> None:
    parent, child = family
    client = admin_client

    html = client.get(reverse("durable:execution-detail", args=[parent.workflow_id])).content
    assert reverse("durable:execution-detail", args=[child.workflow_id]) in html.decode()
    assert "Child workflows" in html.decode()

    html = client.get(reverse("durable:execution-detail", args=[child.workflow_id])).content
    assert "Started by" in html.decode()
    assert reverse("durable:execution-detail", args=[parent.workflow_id]) in html.decode()


def test_a_workflow_without_relatives_shows_no_related_section(admin_client: Client) -> None:
    wid = durable.start(wf.LastOutput)
    run_until_idle()
    html = admin_client.get(reverse("durable:execution-detail", args=[wid]))
    assert "Related workflows" not in html.content.decode()


def test_the_admin_links_children_and_finds_them_by_parent(admin_client: Client, family) -> None:
    parent, child = family
    client = admin_client

    page = client.get(reverse("admin:durable_workflowexecution_change", args=[parent.pk]))
    assert reverse("admin:durable_workflowexecution_change", args=[child.pk]) in (
        page.content.decode()
    )
    found = client.get(
        reverse("admin:durable_workflowexecution_changelist"), {"q": parent.workflow_id}
    )
    assert list(found.context["cl"].result_list) == [child, parent]
