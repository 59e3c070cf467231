"""Log lines of a step attempt stored while it still runs (durable.engine.livelogs)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, QuerySet

from durable.models import StepExecution, StepStatus, Task
from durable.store.records import ClaimedTask


def resumes_attempt(claim: ClaimedTask) -> bool:
    """Whether `claim` runs a step again after a wait: the lines of this run are appended
    to what the attempt's earlier runs logged, rather than replacing them."""
    return claim.pending_wait is not None or bool(claim.recorded_waits)


def _running_row(claim: ClaimedTask, using: str) -> QuerySet[StepExecution]:
    """The attempt's row while it is still running under our lease: a late write of an
    attempt that finished, parked, or was retaken by another worker matches nothing."""
    ours = Task.objects.using(using).filter(id=claim.task_id, lease_token=claim.lease_token)
    return StepExecution.objects.using(using).filter(
        Exists(ours),
        execution_id=claim.execution_pk,
        step=claim.step,
        scope_key=claim.token.scope_key(),
        kind="step",
        attempt=claim.attempt,
        status=StepStatus.RUNNING,
    )


def earlier_logs(claim: ClaimedTask, using: str) -> list[dict[str, Any]] | None:
    """What the attempt's earlier runs logged (a resumed run), or None when the attempt is
    no longer running under our lease."""
    rows = _running_row(claim, using).values_list("logs", flat=True)
    for logs in rows[:1]:
        return list(logs or [])
    return None


def store_running_logs(claim: ClaimedTask, logs: list[dict[str, Any]], using: str) -> bool:
    """Replace the running attempt's `logs`; False when it is no longer running as ours."""
    return _running_row(claim, using).update(logs=logs) > 0
