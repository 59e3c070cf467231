"""Helpers for driving executions one task at a time and checking what was written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.models import QueueState, StepExecution, Task, TaskStatus, WorkflowExecution
from durable.store import claims
from durable.store.records import ClaimedTask

WORKER = "it-worker"


def claim_one(queue: str = "default", *, worker_id: str = WORKER) -> ClaimedTask | None:
    found = claims.claim_tasks(queue, 1, worker_id=worker_id, lease_seconds=30, using="default")
    return found[0] if found else None


def run_next(queue: str = "default") -> ClaimedTask:
    """Claim and run exactly one due task of `queue`; fail the test if there is none."""
    claim = claim_one(queue)
    assert claim is not None, f"no due task on queue {queue!r}: {list(Task.objects.values())}"
    execute(claim, queue_adapter())
    return claim


def make_due(workflow_id: str) -> None:
    """Move the execution's delayed tasks to now, as if their backoff had passed."""
    Task.objects.filter(execution__workflow_id=workflow_id).update(run_at=timezone.now())


def expire_lease(claim: ClaimedTask) -> None:
    Task.objects.filter(id=claim.task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def tasks_of(workflow_id: str) -> list[Task]:
    return list(Task.objects.filter(execution__workflow_id=workflow_id).order_by("id"))


def ready_task(workflow_id: str) -> Task:
    (task,) = [t for t in tasks_of(workflow_id) if t.status == TaskStatus.READY]
    return task


def attempts(workflow_id: str, step: str, kind: str = "step") -> list[StepExecution]:
    return list(
        StepExecution.objects.filter(
            execution__workflow_id=workflow_id, step=step, kind=kind
        ).order_by("attempt", "id")
    )


def row_counts() -> dict[str, int]:
    return {
        "executions": WorkflowExecution.objects.count(),
        "tasks": Task.objects.count(),
        "steps": StepExecution.objects.count(),
        "queue_states": QueueState.objects.count(),
    }


def snapshot(workflow_id: str) -> dict[str, Any]:
    """Everything stored about one execution, to prove a rejected call changed nothing."""
    execution = WorkflowExecution.objects.filter(workflow_id=workflow_id).values().get()
    return {
        "execution": execution,
        "tasks": list(Task.objects.filter(execution__workflow_id=workflow_id).values()),
        "steps": list(
            StepExecution.objects.filter(execution__workflow_id=workflow_id).order_by("id").values()
        ),
    }
