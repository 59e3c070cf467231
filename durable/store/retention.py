"""Retention: delete finished executions (and what hangs off them) once they are old.

Rows go in batches: select a batch of ids, delete those rows and their dependents in one
short transaction, repeat. No statement holds locks on more than one batch, so workers and
the web UI keep going while a large backlog is cleaned up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from durable.conf import DEFAULTS, durable_settings
from durable.models import (
    FINISHED_STATUSES,
    BusPayload,
    ExecutionStatus,
    PendingInput,
    StepExecution,
    Task,
    WorkerState,
    WorkflowEvent,
    WorkflowExecution,
)

COMPLETED = (ExecutionStatus.COMPLETED, ExecutionStatus.CONTINUED)
FAILED = (
    ExecutionStatus.FAILED,
    ExecutionStatus.COMPENSATED,
    ExecutionStatus.COMPENSATION_FAILED,
    ExecutionStatus.CANCELLED,
)
# Payloads of the message bus are read within moments of being sent.
BUS_PAYLOAD_AGE = timedelta(days=1)
# A worker's row is kept this long after it stopped (or was last seen): long enough to
# tell what held an expired lease, and to show recent workers.
WORKER_STATE_AGE = timedelta(days=7)

# Keys of the counts `cleanup` returns, per table (dependents counted with the executions).
DEPENDENTS: dict[str, type[Model]] = {
    "step_executions": StepExecution,
    "pending_inputs": PendingInput,
    "tasks": Task,
    "events": WorkflowEvent,
}


def cleanup(
    completed_days: float | None,
    failed_days: float | None,
    batch_size: int = 1000,
    now: datetime | None = None,
    using: str | None = None,
    *,
    dry_run: bool = False,
) -> dict[str, int]:
    """Delete executions that finished more than `completed_days` (completed) or
    `failed_days` (failed, compensated, compensation_failed, cancelled) ago, measured on
    `completed_at`, with their step attempts, inputs, tasks and events. Also deletes events
    of unfinished executions consumed more than `completed_days` ago (a consumed event's
    value lives on in the step that took it), bus payloads older than a day, and the rows
    of workers not seen for a week.

    None keeps that kind forever. Returns counts per kind; `dry_run` counts what would be
    deleted and deletes nothing. Executions that have not finished are never deleted.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    for name, days in (("completed_days", completed_days), ("failed_days", failed_days)):
        if days is not None and not (
            isinstance(days, int | float) and not isinstance(days, bool) and 0 <= days < 100_000
        ):
            raise ValueError(
                f"{name} must be a number of days from 0 to 99999, or None; got {days!r}"
            )
    using = using or str(durable_settings.DATABASE)
    now = now or timezone.now()
    counts = {"completed_executions": 0, "failed_executions": 0}
    counts.update(dict.fromkeys(DEPENDENTS, 0))
    counts.update(consumed_events=0, bus_payloads=0, worker_states=0)
    executions = WorkflowExecution.objects.using(using)
    for key, statuses, days in (
        ("completed_executions", COMPLETED, completed_days),
        ("failed_executions", FAILED, failed_days),
    ):
        if days is None:
            continue
        old = executions.filter(
            status__in=statuses, completed_at__lt=now - timedelta(days=days)
        ).order_by("id")
        for deleted in _batches(old, batch_size, using, dry_run):
            counts[key] += deleted.get(WorkflowExecution._meta.label, 0)
            for name, model in DEPENDENTS.items():
                counts[name] += deleted.get(model._meta.label, 0)
    if completed_days is not None:
        consumed = (
            WorkflowEvent.objects.using(using)
            .filter(consumed_at__lt=now - timedelta(days=completed_days))
            .exclude(execution__status__in=FINISHED_STATUSES)
        )
        for deleted in _batches(consumed.order_by("id"), batch_size, using, dry_run):
            counts["consumed_events"] += deleted.get(WorkflowEvent._meta.label, 0)
    payloads = BusPayload.objects.using(using).filter(created_at__lt=now - BUS_PAYLOAD_AGE)
    for deleted in _batches(payloads.order_by("id"), batch_size, using, dry_run):
        counts["bus_payloads"] += deleted.get(BusPayload._meta.label, 0)
    workers = WorkerState.objects.using(using).filter(seen_at__lt=now - WORKER_STATE_AGE)
    counts["worker_states"] = workers.count() if dry_run else workers.delete()[0]
    return counts


def _batches(
    rows: QuerySet[Any], batch_size: int, using: str, dry_run: bool
) -> Iterator[dict[str, int]]:
    """Delete `rows` batch by batch, each in its own transaction; yield each batch's
    per-model counts (Django's `delete()` result, cascades included).

    A dry run yields what would be deleted instead: the rows and their cascades, counted."""
    model = rows.model
    if dry_run:
        yield _would_delete(rows, using)
        return
    while True:
        with transaction.atomic(using=using):
            ids = list(rows.values_list("id", flat=True)[:batch_size])
            if not ids:
                return
            # only("id"): the cascade needs the keys, not the (large) JSON columns.
            _, deleted = model._default_manager.using(using).filter(id__in=ids).only("id").delete()
        yield deleted
        if len(ids) < batch_size:
            return


def _would_delete(rows: QuerySet[Any], using: str) -> dict[str, int]:
    counts = {rows.model._meta.label: rows.count()}
    if rows.model is WorkflowExecution:
        for model in DEPENDENTS.values():
            counts[model._meta.label] = (
                model._default_manager.using(using).filter(execution__in=rows.values("id")).count()
            )
    return counts


def cleanup_from_settings(using: str | None = None) -> dict[str, int]:
    """`cleanup` with the windows of DURABLE["RETENTION"] (what workers run periodically)."""
    completed_days, failed_days = retention_days()
    return cleanup(completed_days, failed_days, using=using)


def retention_days() -> tuple[float | None, float | None]:
    """(COMPLETED_DAYS, FAILED_DAYS) of DURABLE["RETENTION"], defaults for missing keys."""
    configured = durable_settings.RETENTION
    merged = {**DEFAULTS["RETENTION"], **(configured if isinstance(configured, dict) else {})}
    return merged["COMPLETED_DAYS"], merged["FAILED_DAYS"]
