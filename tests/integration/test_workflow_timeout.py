"""A workflow's `timeout`: once its deadline passes, the next step does not run."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

import durable
from durable.models import StepExecution, WorkflowExecution
from durable.testing import run_until_idle, run_workflow
from tests.integration import workflows as wf
from tests.integration.support import run_next, tasks_of

pytestmark = pytest.mark.django_db


def wait_past_deadline(wid: str) -> None:
    deadline = WorkflowExecution.objects.get(workflow_id=wid).deadline_at
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.05)


def test_the_deadline_is_set_from_the_start_time() -> None:
    before = timezone.now()
    wid = durable.start(wf.DeadlineNoSaga, {})
    execution = durable.get_execution(wid)

    assert before + timedelta(seconds=0.5) <= execution.deadline_at
    assert execution.deadline_at <= timezone.now() + timedelta(seconds=0.5)


def test_a_workflow_within_its_timeout_completes() -> None:
    execution = run_workflow(wf.DeadlineNoSaga, {})

    assert execution.status == "completed", execution.error


def test_past_its_deadline_a_workflow_fails_with_workflow_timeout_before_the_next_step() -> None:
    wid = durable.start(wf.DeadlineNoSaga, {})
    run_next()  # quick
    wait_past_deadline(wid)
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.WorkflowTimeout"
    assert "passed its timeout of 0.5s before step 'too_late'" in execution.error["message"]
    assert execution.context == {"quick": True}
    (late,) = StepExecution.objects.filter(execution__workflow_id=wid, step="too_late")
    assert (late.attempt, late.status) == (1, "failed")
    assert tasks_of(wid) == []


def test_a_timed_out_workflow_compensates_its_completed_steps() -> None:
    wid = durable.start(wf.Deadline, {})
    run_next()  # quick
    wait_past_deadline(wid)
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "compensated"
    assert execution.error["type"] == "durable.exceptions.WorkflowTimeout"
    (undo,) = StepExecution.objects.filter(execution=execution, kind="compensate")
    assert (undo.step, undo.status) == ("quick", "completed")
    assert "too_late_ran" not in execution.context


def test_a_scheduled_workflow_deadline_counts_from_its_scheduled_time() -> None:
    scheduled = timezone.now() + timedelta(hours=1)
    wid = durable.start(wf.DeadlineNoSaga, {}, scheduled_at=scheduled)

    assert durable.get_execution(wid).deadline_at == scheduled + timedelta(seconds=0.5)
