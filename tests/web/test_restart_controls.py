"""Retry and resume in the admin and the dashboard."""

from __future__ import annotations

import pytest
from django.urls import reverse

import durable
from durable.models import ExecutionStatus, WorkflowExecution
from durable.testing import run_until_idle
from tests.deploys import workflows as wf
from tests.deploys.workflows import deployed
from tests.integration.support import run_next
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


def failed_billing() -> str:
    wid = durable.start(wf.Billing, {"fail": True})
    run_until_idle()
    return wid


def test_admin_action_retries_from_the_failed_step_and_reports_refusals(superuser) -> None:
    failed = failed_billing()
    running = durable.start(wf.Billing, {})
    pks = list(WorkflowExecution.objects.values_list("pk", flat=True))
    response = client_for(superuser).post(
        reverse("admin:durable_workflowexecution_changelist"),
        {"action": "retry_executions", "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )
    html = response.content.decode()
    assert "Retrying 1 execution(s)." in html
    assert f"Not retried: {running}" in html
    run_until_idle()
    assert durable.get_execution(failed).status == ExecutionStatus.COMPLETED


def test_admin_filters_list_needs_attention() -> None:
    assert ("needs_attention", "Needs Attention") in ExecutionStatus.choices


def test_dashboard_retry_form_offers_root_steps_and_retries(superuser) -> None:
    wid = failed_billing()
    client = client_for(superuser)
    page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert reverse("durable:retry", args=[wid]) in page
    for name in ("prepare", "charge", "notify", "close"):
        assert f'<option value="{name}">' in page
    response = client.post(reverse("durable:retry", args=[wid]), {"from_step": "charge"})
    assert response.status_code == 302
    assert durable.get_execution(wid).status == ExecutionStatus.PENDING
    bad = client.post(reverse("durable:retry", args=[wid]), {"from_step": "charge"}, follow=True)
    assert "Could not retry" in bad.content.decode()


def test_dashboard_retry_needs_the_change_permission(viewer) -> None:
    wid = failed_billing()
    client = client_for(viewer)
    page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert reverse("durable:retry", args=[wid]) not in page
    assert client.post(reverse("durable:retry", args=[wid]), {}).status_code == 403
    assert durable.get_execution(wid).status == ExecutionStatus.FAILED


def test_dashboard_shows_a_parked_execution_and_resumes_it(superuser) -> None:
    wid = durable.start(wf.Shipping, {})
    run_until_idle()
    durable.send_event(wid, "picked_up", {})
    client = client_for(superuser)
    with deployed("deploy_shipping", wf.ShippingWithoutPickup):
        run_next()
        refused = client.post(reverse("durable:resume", args=[wid]))
        assert refused.status_code == 302
        assert durable.get_execution(wid).status == ExecutionStatus.NEEDS_ATTENTION
    # The step is back in the code; the execution stays parked until resumed.
    page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert "no longer exists" in page
    assert reverse("durable:resume", args=[wid]) in page
    listing = client.get(reverse("durable:execution-list"), {"status": "needs_attention"})
    assert wid in listing.content.decode()
    client.post(reverse("durable:resume", args=[wid]))
    run_until_idle()
    assert durable.get_execution(wid).status == ExecutionStatus.COMPLETED
