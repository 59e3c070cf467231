"""The `continued` status in the dashboard (filter, badge, links between the runs) and
the admin (its list filter)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from durable.models import WorkflowExecution
from durable.testing import run_workflow
from tests.semantics import workflows as wf
from tests.web.conftest import client_for, superuser  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs() -> tuple[WorkflowExecution, WorkflowExecution]:
    first = run_workflow(wf.InlineLoop, {"round": 0, "rounds": 1})
    successor = first.continuations.get()
    return first, successor


def test_dashboard_filters_by_continued_and_links_the_runs(superuser, runs):  # noqa: F811
    first, successor = runs
    client = client_for(superuser)

    listing = client.get(
        reverse("durable:execution-list"), {"status": "continued"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert first.workflow_id in listing
    assert successor.workflow_id not in listing
    assert 'class="st st-continued" data-status="continued">continued</span>' in listing

    page = client.get(reverse("durable:execution-detail", args=[first.workflow_id])).content
    assert b"Continued as" in page
    assert successor.workflow_id.encode() in page
    page = client.get(reverse("durable:execution-detail", args=[successor.workflow_id])).content
    assert b"Continues" in page
    assert first.workflow_id.encode() in page


def test_admin_lists_continued_runs_by_status(superuser, runs):  # noqa: F811
    first, successor = runs
    page = client_for(superuser).get(
        reverse("admin:durable_workflowexecution_changelist"), {"status__exact": "continued"}
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert first.workflow_id in html
    assert successor.workflow_id not in html
    assert "?status__exact=continued" in html  # the filter offers it
