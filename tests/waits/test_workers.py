"""Waiting with real worker processes: real sleeps, wake-ups by events and input, restarts."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from django.utils import timezone

import durable
from durable.models import PendingInput
from durable.testing import assert_workflow_completed
from tests.support.workers import WorkerPool, wait_until
from tests.waits import workflows as wf
from tests.waits.support import parked, status

pytestmark = pytest.mark.e2e

MODULES = "tests.waits.workflows"


def parked_until(wid: str) -> datetime:
    """Wait until the execution's step is parked; return when it is due."""
    wait_until(
        lambda: status(wid) == "waiting" and parked(wid),
        timeout=30,
        message=lambda: f"{wid} never parked: {durable.get_execution(wid).status}",
    )
    (task,) = parked(wid)
    return task.run_at


def test_a_real_sleep_does_not_continue_before_its_deadline_and_does_after(
    workers: WorkerPool,
) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.WorkerSleep, {"seconds": 2})
    deadline = parked_until(wid)

    while True:
        execution = durable.get_execution(wid)
        if timezone.now() >= deadline:
            break
        # Read before the deadline: the step has not gone on yet.
        assert execution.status == "waiting", workers.logs()
        assert "woke_at" not in execution.context
        time.sleep(0.05)

    execution = assert_workflow_completed(wid, timeout=30)
    assert datetime.fromisoformat(execution.context["woke_at"]) >= deadline
    assert execution.context["after"] is True


def test_events_and_input_wake_a_real_worker(workers: WorkerPool) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.WorkerEventAndInput, {})
    parked_until(wid)

    durable.send_event(wid, "go", {"n": 1})
    wait_until(
        lambda: PendingInput.objects.filter(execution__workflow_id=wid).exists(),
        timeout=30,
        message=workers.logs,
    )
    assert parked_until(wid).year == 9000
    durable.provide_input(wid, "ok", "yes")

    execution = assert_workflow_completed(wid, timeout=30)
    assert execution.context == {"event": {"n": 1}, "answer": "yes"}


def test_a_real_event_timeout_returns_its_value_once_due(workers: WorkerPool) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.OneEvent, {"timeout": 1, "timeout_value": "late"})
    deadline = parked_until(wid)

    execution = assert_workflow_completed(wid, timeout=30)
    assert execution.context["got"] == "late"
    assert execution.completed_at >= deadline


def test_a_workflow_sleeping_through_a_worker_restart_resumes_on_time(
    workers: WorkerPool,
) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.WorkerSleep, {"seconds": 3})
    deadline = parked_until(wid)

    workers.stop_all()  # SIGTERM: every worker is gone while the workflow sleeps
    assert all(w.process.returncode == 0 for w in workers.processes), workers.logs()
    time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 0.5)
    assert status(wid) == "waiting"

    workers.start(1, workflow_modules=MODULES)
    execution = assert_workflow_completed(wid, timeout=30)
    assert datetime.fromisoformat(execution.context["woke_at"]) >= deadline


def test_branches_running_at_once_never_consume_the_same_event(workers: WorkerPool) -> None:
    wids = [durable.start(wf.TwinWaits, {}) for _ in range(5)]
    for wid in wids:
        durable.send_event(wid, "go", f"{wid}-a")
        durable.send_event(wid, "go", f"{wid}-b")
    workers.start(2, workflow_modules=MODULES)  # the two branches of each run side by side

    for wid in wids:
        context = assert_workflow_completed(wid, timeout=60).context
        assert sorted([context["one"], context["two"]]) == [f"{wid}-a", f"{wid}-b"]
