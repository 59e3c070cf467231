"""The admin: cancel executions, answer pending inputs, run schedules, pause queues."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

import durable
import durable.queues
from durable.models import PendingInput, QueueState, ScheduledWorkflow, WorkflowExecution
from durable.testing import run_until_idle
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db


def _action(client, model: str, action: str, pks: list[object]):
    return client.post(
        reverse(f"admin:durable_{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_cancel_action_cancels_unfinished_executions_and_reports_finished_ones(superuser):
    waiting = durable.start(WebReview)
    run_until_idle()
    done = durable.start(WebSteps)
    run_until_idle()
    pks = list(WorkflowExecution.objects.values_list("pk", flat=True))
    response = _action(client_for(superuser), "workflowexecution", "cancel_executions", pks)
    assert response.status_code == 200
    assert durable.get_execution(waiting).status == "cancelled"
    assert durable.get_execution(done).status == "completed"
    html = response.content.decode()
    assert "Cancelled 1 execution(s)." in html
    assert f"Not cancelled: {done}" in html


def test_execution_change_page_shows_steps_with_logs(superuser):
    wid = durable.start(WebSteps, {"label": "<i>hi</i>"})
    run_until_idle()
    pk = WorkflowExecution.objects.get(workflow_id=wid).pk
    html = (
        client_for(superuser)
        .get(reverse("admin:durable_workflowexecution_change", args=[pk]))
        .content.decode()
    )
    assert "fetched &lt;i&gt;hi&lt;/i&gt;" in html
    assert reverse("durable:execution-detail", args=[wid]) in html


@pytest.fixture
def pending() -> PendingInput:
    durable.start(WebReview)
    run_until_idle()
    return PendingInput.objects.get()


def _change_url(pending: PendingInput) -> str:
    return reverse("admin:durable_pendinginput_change", args=[pending.pk])


def test_pending_input_page_shows_the_form_built_from_its_schema(superuser, pending):
    html = client_for(superuser).get(_change_url(pending)).content.decode()
    assert 'name="input-amount"' in html
    assert 'type="checkbox" name="input-approved"' in html
    assert 'name="input-size"' in html
    assert 'name="_respond"' in html
    assert "Approve the order?" in html


def test_pending_input_form_shows_validation_errors(superuser, pending):
    response = client_for(superuser).post(
        _change_url(pending), {"_respond": "Respond", "input-note": "x" * 25}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "This field is required." in html
    assert "at most 20 characters" in html
    assert PendingInput.objects.get().status == "pending"


def test_responding_in_the_admin_records_the_responder_and_continues(superuser, pending):
    response = client_for(superuser).post(
        _change_url(pending),
        {"_respond": "Respond", "input-amount": "12.5", "input-size": '"m"'},
    )
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == "completed"
    assert pending.responded_by == superuser
    assert pending.response == {"amount": 12.5, "size": "m", "approved": False}
    run_until_idle()
    assert WorkflowExecution.objects.get().status == "completed"


def test_responding_in_the_admin_needs_the_respond_permission(staff, pending):
    client = client_for(staff)
    html = client.get(_change_url(pending)).content.decode()
    assert "permission to answer" in html
    response = client.post(_change_url(pending), {"_respond": "Respond", "input-amount": "1"})
    assert response.status_code == 403
    assert PendingInput.objects.get().status == "pending"
    staff.user_permissions.add(Permission.objects.get(codename="respond_pendinginput"))
    response = client_for(staff).post(
        _change_url(pending), {"_respond": "Respond", "input-amount": "1"}
    )
    assert response.status_code == 302
    assert PendingInput.objects.get().responded_by == staff


def _schedule(**kwargs: object) -> ScheduledWorkflow:
    return ScheduledWorkflow.objects.create(
        name="nightly",
        workflow_name="web_steps",
        cron_expression="0 3 * * *",
        input={"label": "from-schedule"},
        queue="payments",
        **kwargs,
    )


def test_schedule_actions_enable_disable_and_run_now(superuser):
    schedule = _schedule(enabled=True)
    client = client_for(superuser)
    _action(client, "scheduledworkflow", "disable", [schedule.pk])
    schedule.refresh_from_db()
    assert schedule.enabled is False
    _action(client, "scheduledworkflow", "enable", [schedule.pk])
    schedule.refresh_from_db()
    assert schedule.enabled is True
    response = _action(client, "scheduledworkflow", "run_now", [schedule.pk])
    execution = WorkflowExecution.objects.get()
    assert (execution.workflow_name, execution.input, execution.queue) == (
        "web_steps",
        {"label": "from-schedule"},
        "payments",
    )
    assert f"nightly: started {execution.workflow_id}." in _messages(response)


def test_run_now_of_an_unknown_workflow_reports_the_error(superuser):
    schedule = _schedule()
    ScheduledWorkflow.objects.filter(pk=schedule.pk).update(workflow_name="gone")
    response = _action(client_for(superuser), "scheduledworkflow", "run_now", [schedule.pk])
    assert any("nightly: not started" in m for m in _messages(response))
    assert not WorkflowExecution.objects.exists()


def test_queues_list_every_configured_queue_with_stats_and_pause_resume(superuser):
    client = client_for(superuser)
    html = client.get(reverse("admin:durable_queuestate_changelist")).content.decode()
    assert set(QueueState.objects.values_list("name", flat=True)) == {
        "default",
        "payments",
        "high_priority",
    }
    assert "concurrency" in html
    _action(client, "queuestate", "pause", ["payments"])
    assert durable.queues.get_stats("payments")["paused"] is True
    assert durable.queues.get_stats("default")["paused"] is False
    _action(client, "queuestate", "resume", ["payments"])
    assert durable.queues.get_stats("payments")["paused"] is False


def test_staff_without_change_permission_cannot_run_admin_actions(viewer):
    schedule = _schedule()
    viewer.user_permissions.add(Permission.objects.get(codename="view_scheduledworkflow"))
    response = _action(client_for(viewer), "scheduledworkflow", "run_now", [schedule.pk])
    assert not WorkflowExecution.objects.exists()
    assert response.status_code == 200
