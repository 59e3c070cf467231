"""Run workflows inline (no worker process), move time forward, and assert outcomes.
Imported as `durable.testing`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from durable.api import get_execution, provide_input, resume, send_event, start
from durable.conf import durable_settings
from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    FINISHED_STATUSES,
    PendingInput,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.store import outbox
from durable.store.waits import FAR_FUTURE

INLINE_WORKER = "inline"

__all__ = [
    "advance_time",
    "assert_workflow_completed",
    "assert_workflow_failed",
    "provide_input",
    "resume",
    "run_until_idle",
    "run_workflow",
    "send_event",
    "wait_for_finish",
]


def run_until_idle(*, skip_delays: bool = True, max_tasks: int = 10_000) -> int:
    """Run ready tasks in this thread until none is left; return how many ran.

    With `skip_delays` (the default), retry backoffs and `scheduled_at` are not waited
    for: delayed tasks are made due at once. A KeyboardInterrupt (Ctrl-C) raised while a
    step runs stops the run and propagates, recording nothing: the step's claim is left to
    its lease, as when a worker is killed.
    """
    adapter = queue_adapter()
    using = adapter.using
    ran = 0
    while ran < max_tasks:
        if skip_delays:
            Task.objects.using(using).filter(
                status=TaskStatus.READY, run_at__gt=timezone.now()
            ).update(run_at=timezone.now())
        claimed = []
        for queue in _queues_with_work(using):
            claimed += adapter.claim(
                queue,
                1,
                worker_id=INLINE_WORKER,
                lease_seconds=float(durable_settings.LEASE_SECONDS),
            )
        if not claimed:
            return ran
        for claim in claimed:
            execute(claim, adapter)
            ran += 1
    raise RuntimeError(
        f"run_until_idle ran {max_tasks} tasks and work remains; is a loop unbounded?"
    )


def _queues_with_work(using: str) -> list[str]:
    return sorted(
        set(
            Task.objects.using(using)
            .filter(status__in=CLAIMABLE_TASK_STATUSES, run_at__lte=timezone.now())
            .values_list("queue", flat=True)
        )
    )


def run_workflow(
    workflow: Any, input: dict[str, Any] | None = None, **start_options: Any
) -> WorkflowExecution:
    """Start a workflow, run it inline until nothing is ready, and return the execution."""
    workflow_id = start(workflow, input, **start_options)
    run_until_idle()
    return get_execution(workflow_id)


def wait_for_finish(workflow_id: str, timeout: float = 5.0) -> WorkflowExecution:
    """Poll until the execution reaches a final status (or raise AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = get_execution(workflow_id)
        if execution.status in FINISHED_STATUSES:
            return execution
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"execution {workflow_id} is still {execution.status} after "
                f"{timeout}s (current step: {execution.current_step!r})"
            )
        time.sleep(0.05)


def assert_workflow_completed(workflow_id: str, timeout: float = 5.0) -> WorkflowExecution:
    execution = wait_for_finish(workflow_id, timeout)
    assert execution.status == "completed", (
        f"execution {workflow_id} ended {execution.status}: {execution.error}"
    )
    return execution


def assert_workflow_failed(workflow_id: str, timeout: float = 5.0) -> WorkflowExecution:
    execution = wait_for_finish(workflow_id, timeout)
    assert execution.status in ("failed", "compensated", "compensation_failed"), (
        f"execution {workflow_id} ended {execution.status}, not failed"
    )
    return execution


def advance_time(delta: timedelta) -> int:
    """Move every pending timer `delta` closer, as if that much time had passed: sleeps,
    wait and input timeouts, retry backoffs, `scheduled_at` and workflow deadlines. Works
    with inline runs and with real workers alike (it changes the stored times). Returns
    how many tasks became due."""
    if not isinstance(delta, timedelta) or delta <= timedelta(0):
        raise ValueError(f"advance_time() takes a positive timedelta, got {delta!r}")
    using = durable_settings.DATABASE
    now = timezone.now()
    due = 0
    with transaction.atomic(using=using):
        for task in Task.objects.using(using).filter(run_at__gt=now).select_for_update():
            if task.run_at < FAR_FUTURE:
                task.run_at -= delta
                due += task.run_at <= now
            if task.wait and task.wait.get("deadline"):
                deadline = datetime.fromisoformat(task.wait["deadline"]) - delta
                task.wait = {**task.wait, "deadline": deadline.isoformat()}
            task.save(using=using, update_fields=["run_at", "wait"])
        WorkflowExecution.objects.using(using).filter(
            deadline_at__isnull=False, completed_at__isnull=True
        ).update(deadline_at=F("deadline_at") - delta)
        PendingInput.objects.using(using).filter(
            status=PendingInput.Status.PENDING, timeout_at__isnull=False
        ).update(timeout_at=F("timeout_at") - delta)
        outbox.ready(Task.objects.using(using).filter(status__in=CLAIMABLE_TASK_STATUSES), using)
    return due
