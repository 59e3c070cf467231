"""Read-side queries that must run in the database (metrics over many rows)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Min, Q, QuerySet

from durable.models import FAILED_STATUSES, ExecutionStatus, Task, TaskStatus, WorkflowExecution


def execution_metrics(
    using: str, workflow_name: str | None, since: datetime | None
) -> dict[str, Any]:
    """Counts and durations of executions created since `since`, in two or three queries."""
    qs: QuerySet[WorkflowExecution] = WorkflowExecution.objects.using(using).all()
    if workflow_name is not None:
        qs = qs.filter(workflow_name=workflow_name)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    counts = qs.aggregate(
        total=Count("id"),
        successful=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
        failed=Count("id", filter=Q(status__in=list(FAILED_STATUSES))),
        avg=Avg("duration_ms", filter=Q(status=ExecutionStatus.COMPLETED)),
    )
    finished = counts["successful"] + counts["failed"]
    durations = qs.filter(status=ExecutionStatus.COMPLETED, duration_ms__isnull=False)
    return {
        "total_executions": counts["total"],
        "successful": counts["successful"],
        "failed": counts["failed"],
        "success_rate": counts["successful"] / finished if finished else None,
        "avg_duration_ms": round(counts["avg"], 1) if counts["avg"] is not None else None,
        "p95_duration_ms": _p95(durations, counts["successful"]),
    }


def _p95(durations: QuerySet[WorkflowExecution], count: int) -> int | None:
    """Nearest-rank 95th percentile, read with one indexed ORDER BY ... OFFSET query."""
    if not count:
        return None
    rank = max(math.ceil(0.95 * count), 1)
    row = durations.order_by("duration_ms").values_list("duration_ms", flat=True)[rank - 1 : rank]
    values = [value for value in row if value is not None]
    return int(values[0]) if values else None


def queue_backlog(queues: Sequence[str], now: datetime, using: str) -> dict[str, tuple[int, Any]]:
    """Per queue of `queues`: how many tasks are ready (due, unclaimed) and the due time of
    the oldest, in one query (the partial index on queue and due time serves it)."""
    rows = (
        Task.objects.using(using)
        .filter(queue__in=list(queues), status=TaskStatus.READY, run_at__lte=now)
        .values("queue")
        .annotate(ready=Count("id"), oldest=Min("run_at"))
        .values_list("queue", "ready", "oldest")
    )
    return {str(queue): (int(ready), oldest) for queue, ready, oldest in rows}


def waiting_executions(using: str) -> dict[str, int]:
    """How many executions wait (on a sleep, an event, input or a child), per workflow."""
    rows = (
        WorkflowExecution.objects.using(using)
        .filter(status=ExecutionStatus.WAITING)
        .values("workflow_name")
        .annotate(n=Count("id"))
        .values_list("workflow_name", "n")
    )
    return {str(name): int(n) for name, n in rows}
