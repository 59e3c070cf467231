"""The hot path's hand-written SQL, in one place to review.

A worker's steady state is claim -> run -> checkpoint; every statement here runs once or
more per step, so each one does in one round trip what the ORM would do in several. Only
PostgreSQL uses the raw statements (callers check `connection.features` first); other
databases keep the ORM path beside each caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections

from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    FlowSlot,
    PendingInput,
    QueueState,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowExecution,
)


def supported(using: str) -> bool:
    """Whether `using` runs the statements here (PostgreSQL); others take the ORM path."""
    return connections[using].vendor == "postgresql"


@dataclass(frozen=True)
class Lease:
    token: uuid.UUID
    worker_id: str
    expires_at: datetime
    queue: str


def _table(model: type[Any]) -> str:
    return str(model._meta.db_table)


# One statement claims: lock due rows (skipping rows other workers hold), stamp the lease
# and return the claimed rows. A paused queue matches nothing, so an idle poll is this
# statement alone. The inner ORDER BY/LIMIT walks durable_task_ready_idx.
CLAIM_SQL = f"""
UPDATE {_table(Task)} AS t
   SET status = %(claimed)s, lease_token = %(token)s, leased_by = %(worker)s,
       lease_expires_at = %(expires)s, claims = t.claims + 1
 WHERE t.id IN (
       SELECT id FROM {_table(Task)}
        WHERE queue = %(queue)s AND status = ANY(%(claimable)s) AND run_at <= %(now)s
          AND NOT EXISTS (SELECT 1 FROM {_table(QueueState)} WHERE name = %(queue)s AND paused)
        ORDER BY priority DESC, run_at, id
        LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED)
RETURNING t.*
"""


def claim_ready(queue: str, limit: int, lease: Lease, now: datetime, using: str) -> list[Task]:
    """PostgreSQL: claim up to `limit` due tasks of `queue` in one statement, best first."""
    params = {
        "claimed": TaskStatus.CLAIMED.value,
        "token": lease.token,
        "worker": lease.worker_id,
        "expires": lease.expires_at,
        "queue": queue,
        "claimable": [str(status) for status in CLAIMABLE_TASK_STATUSES],
        "now": now,
        "limit": limit,
    }
    tasks = list(Task.objects.using(using).raw(CLAIM_SQL, params))
    tasks.sort(key=lambda task: (-task.priority, task.run_at, task.id))
    return tasks


# What a claim reads of its executions: what the step's view and ClaimedTask need, not
# the result or error columns.
CLAIM_EXECUTION_FIELDS = (
    "id",
    "workflow_id",
    "workflow_name",
    "status",
    "input",
    "context",
    "fanouts",
    "deadline_at",
    "definition_fingerprint",  # a deploy check is due when it differs from the code's
    "attempt_floor",  # the first attempt of a re-run keeps its context (restarts)
)


# Both reasons to yield in one round trip (the second walks durable_task_ready_idx).
YIELDS_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {_table(QueueState)} WHERE name = %(queue)s AND paused)
    OR EXISTS (SELECT 1 FROM {_table(Task)}
                WHERE queue = %(queue)s AND status = ANY(%(claimable)s)
                  AND run_at <= %(now)s AND priority > %(priority)s)
"""


def yields_to_queue(queue: str, priority: int, now: datetime, using: str) -> bool:
    """Whether work of `priority` must go back to `queue` instead of being chained: the
    queue is paused, or a task of higher priority is due on it (claims go by priority)."""
    if supported(using):
        with connections[using].cursor() as cursor:
            cursor.execute(
                YIELDS_SQL,
                {
                    "queue": queue,
                    "priority": priority,
                    "now": now,
                    "claimable": [str(status) for status in CLAIMABLE_TASK_STATUSES],
                },
            )
            row = cursor.fetchone()
        return bool(row[0])
    if QueueState.objects.using(using).filter(name=queue, paused=True).exists():
        return True
    return (
        Task.objects.using(using)
        .filter(
            queue=queue,
            status__in=CLAIMABLE_TASK_STATUSES,
            run_at__lte=now,
            priority__gt=priority,
        )
        .exists()
    )


def claim_executions(pks: Iterable[int], using: str) -> dict[int, WorkflowExecution]:
    rows = WorkflowExecution.objects.using(using).filter(pk__in=list(pks))
    return {execution.pk: execution for execution in rows.only(*CLAIM_EXECUTION_FIELDS)}


DELETE_TASK_SQL = f"""
DELETE FROM {_table(Task)} WHERE id = %(id)s AND lease_token = %(token)s RETURNING *
"""


def delete_task(task_id: int, lease_token: uuid.UUID, using: str) -> Task | None:
    """Delete our task row if the lease is still ours; return what it held (else None).
    One statement for what a locking SELECT and a DELETE did."""
    rows = list(
        Task.objects.using(using).raw(DELETE_TASK_SQL, {"id": task_id, "token": lease_token})
    )
    return rows[0] if rows else None


# What an execution reaching its final status drops once its tasks are deleted (a statement
# of its own, first, as every path that ends an execution takes its locks in that order),
# in one round trip: the attempts still running or parked elsewhere (they can no longer
# commit), its pending inputs, and its concurrency slot (returned, for the next execution
# in line to be admitted). Data-modifying CTEs all run whether or not the SELECT reads them.
FINISH_SQL = f"""
WITH steps AS (UPDATE {_table(StepExecution)}
                  SET status = %(failed)s, completed_at = %(now)s, error = %(error)s::jsonb
                WHERE execution_id = %(pk)s AND status = ANY(%(unfinished)s)),
     inputs AS (UPDATE {_table(PendingInput)} SET status = %(cancelled)s, completed_at = %(now)s
                 WHERE execution_id = %(pk)s AND status = %(pending)s),
     slot AS (DELETE FROM {_table(FlowSlot)} WHERE execution_id = %(pk)s
              RETURNING scope, admitted)
SELECT scope, admitted FROM slot
"""


def finish_cleanup(
    execution_pk: int, now: datetime, error: dict[str, Any], using: str
) -> tuple[str, bool] | None:
    """PostgreSQL: drop what a finishing execution leaves behind (see FINISH_SQL); returns
    the (scope, admitted) of the concurrency slot it held, if any."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            FINISH_SQL,
            {
                "pk": execution_pk,
                "failed": StepStatus.FAILED.value,
                "now": now,
                "error": json.dumps(error),
                "unfinished": [StepStatus.RUNNING.value, StepStatus.WAITING.value],
                "cancelled": PendingInput.Status.CANCELLED.value,
                "pending": PendingInput.Status.PENDING.value,
            },
        )
        row = cursor.fetchone()
    return (str(row[0]), bool(row[1])) if row is not None else None
