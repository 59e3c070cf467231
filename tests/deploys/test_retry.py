"""durable.retry(wid, from_step=...): re-running a finished execution from a step with the
context saved before it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

import durable
from durable.exceptions import ExecutionNotFound, InvalidTransition
from durable.models import ExecutionStatus, StepStatus, Task, WorkflowExecution
from durable.testing import run_until_idle
from tests.deploys import workflows as wf
from tests.integration.support import attempts

pytestmark = pytest.mark.django_db


def failed_billing() -> str:
    wid = durable.start(wf.Billing, {"fail": True, "amount": 7})
    run_until_idle()
    assert durable.get_execution(wid).status == ExecutionStatus.FAILED
    return wid


def test_retry_reruns_from_the_failed_step_with_the_context_saved_before_it() -> None:
    wid = failed_billing()
    durable.retry(wid)
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.PENDING
    assert execution.error is None
    assert execution.completed_at is None
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == 7
    # prepare ran once; charge's failed attempt stays as history below the re-run's.
    assert [(r.attempt, r.status) for r in attempts(wid, "prepare")] == [(1, "completed")]
    assert [(r.attempt, r.status) for r in attempts(wid, "charge")] == [
        (1, StepStatus.FAILED),
        (2, StepStatus.COMPLETED),
    ]
    assert execution.context["runs"][:2] == ["prepare", "charge"]


def test_retry_from_an_earlier_step_of_a_completed_execution_discards_later_writes() -> None:
    wid = durable.start(wf.Billing, {"amount": 5})
    run_until_idle()
    assert durable.get_execution(wid).context["charged"] == 5
    durable.retry(wid, from_step="charge")
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED
    # Restarted from the context before charge: charged once, not twice.
    assert execution.context["charged"] == 5
    assert execution.context["runs"].count("prepare") == 1
    assert execution.context["runs"].count("charge") == 1


def test_a_step_inside_a_block_restarts_its_root_level_block() -> None:
    wid = durable.start(wf.Billing, {})
    run_until_idle()
    durable.retry(wid, from_step="sms")
    assert sorted(t.step for t in Task.objects.filter(execution__workflow_id=wid)) == [
        "email",
        "sms",
    ]
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED
    assert sorted(execution.context["runs"]) == sorted(
        ["prepare", "charge", "email", "sms", "close"]
    )
    assert [r.attempt for r in attempts(wid, "email")] == [1, 2]


@pytest.mark.parametrize(
    ("make", "from_step", "error", "match"),
    [
        (lambda: "no-such-id", None, ExecutionNotFound, "no execution"),
        (lambda: durable.start(wf.Billing, {}), None, InvalidTransition, "only finished"),
        (failed_billing, "nope", ValueError, "has no step or block 'nope'"),
        (failed_billing, "close", InvalidTransition, "never reached 'close'"),
    ],
)
def test_bad_retries_raise_and_change_nothing(make, from_step, error, match) -> None:
    wid = make()
    before = list(WorkflowExecution.objects.values())
    with pytest.raises(error, match=match):
        durable.retry(wid, from_step=from_step)
    assert list(WorkflowExecution.objects.values()) == before


def test_retry_of_a_cancelled_waiting_execution_drops_the_old_waits() -> None:
    wid = durable.start(wf.Shipping, {})
    run_until_idle()
    durable.cancel(wid)
    durable.retry(wid)  # default: the interrupted step
    (task,) = Task.objects.filter(execution__workflow_id=wid)
    assert task.step == "await_pickup"
    assert task.wait is None
    assert "waits" not in task.token
    durable.send_event(wid, "picked_up", {"n": 2})
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.context == {"log": ["pack", "deliver"], "pickup": {"n": 2}}


def test_durable_retry_command() -> None:
    wid = failed_billing()
    out = StringIO()
    with pytest.raises(CommandError, match="has no step or block"):
        call_command("durable_retry", wid, "--from-step", "nope", stdout=out)
    call_command("durable_retry", wid, "--from-step", "prepare", stdout=out)
    assert f"retrying {wid}" in out.getvalue()
    run_until_idle()
    assert durable.get_execution(wid).status == ExecutionStatus.COMPLETED


def test_a_rerun_gets_its_full_retry_budget_numbered_after_the_old_attempts() -> None:
    wid = durable.start(wf.AlwaysFails, {})
    run_until_idle()
    assert [r.attempt for r in attempts(wid, "flaky")] == [1, 2]
    durable.retry(wid)
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error["message"] == "attempt 4 failed"
    assert [(r.attempt, r.status) for r in attempts(wid, "flaky")] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
    ]
