"""An execution's lifecycle events, rebuilt from what is stored.

The bus keeps no history: a subscriber hears what is published after it subscribed. This
module reads the execution and its attempt rows and tells the same story in the same event
shapes (`durable.signals.lifecycle_event`), so `events.subscribe_workflow(wid,
replay=True)` can start with what happened before. Every rebuilt event carries
`"replayed": True`; its `timestamp` is the stored time of what it reports.

What the rows cannot tell is left out: the timing of a retry's backoff (a failed attempt
with a later one is reported as `step_retrying`, without `retry_at`), and waits the
execution has left behind (only a current wait is reported, as `workflow_waiting`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from durable.exceptions import ExecutionNotFound
from durable.models import ExecutionStatus, StepExecution, StepStatus, WorkflowExecution
from durable.signals import lifecycle_event
from durable.store.executions import FINAL_EVENTS

# The fields that tell one event from another, so a live copy of a replayed one is dropped.
IDENTITY = ("event", "step", "kind", "scope_key", "attempt")


def identity(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(event.get(name) for name in IDENTITY)


def stored_history(workflow_id: str, *, using: str) -> list[dict[str, Any]]:
    """The lifecycle events of execution `workflow_id` so far, oldest first."""
    execution = WorkflowExecution.objects.using(using).filter(workflow_id=workflow_id).first()
    if execution is None:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}")
    rows = list(
        StepExecution.objects.using(using)
        .filter(execution=execution)
        .order_by("id")
        .only(
            "step",
            "kind",
            "scope_key",
            "attempt",
            "status",
            "started_at",
            "completed_at",
            "duration_ms",
            "error",
            "worker_id",
        )
    )
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    order = 0

    def add(when: datetime | None, event: dict[str, Any]) -> None:
        nonlocal order
        if when is None:
            return
        event["timestamp"] = when.isoformat()
        event["replayed"] = True
        timed.append((when, order, event))
        order += 1

    wid, name = execution.workflow_id, execution.workflow_name
    add(execution.started_at, lifecycle_event("workflow_started", wid, name))
    for row, later in _with_later_attempts(rows):
        step = {
            "step": row.step,
            "kind": row.kind,
            "scope_key": row.scope_key,
            "attempt": row.attempt,
        }
        add(
            row.started_at,
            lifecycle_event("step_started", wid, name, **step, worker_id=row.worker_id),
        )
        if row.status in (StepStatus.COMPLETED, StepStatus.COMPENSATED):
            # A compensated step completed first; its compensation is a row of its own.
            add(
                row.completed_at,
                lifecycle_event("step_completed", wid, name, **step, duration_ms=row.duration_ms),
            )
        elif row.status == StepStatus.FAILED:
            kind = "step_retrying" if later else "step_failed"
            add(
                row.completed_at,
                lifecycle_event(kind, wid, name, **step, error=_brief(row.error)),
            )
    if execution.status == ExecutionStatus.WAITING:
        add(
            execution.updated_at,
            lifecycle_event("workflow_waiting", wid, name, step=execution.current_step),
        )
    final = FINAL_EVENTS.get(execution.status)
    if final is not None:
        add(
            execution.completed_at or execution.updated_at,
            lifecycle_event(
                final,
                wid,
                name,
                status=execution.status,
                error=execution.error if execution.status != ExecutionStatus.COMPLETED else None,
            ),
        )
    timed.sort(key=lambda entry: (entry[0], entry[1]))
    return [event for _, _, event in timed]


def _with_later_attempts(
    rows: list[StepExecution],
) -> Iterable[tuple[StepExecution, bool]]:
    """Each row, and whether a later attempt of the same run of the same step exists."""
    last: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row.step, row.scope_key, row.kind)
        last[key] = max(last.get(key, 0), row.attempt)
    for row in rows:
        yield row, row.attempt < last[(row.step, row.scope_key, row.kind)]


def _brief(error: Any) -> dict[str, Any]:
    error = error if isinstance(error, dict) else {}
    return {"type": error.get("type"), "message": error.get("message")}
