"""The hot path's hand-written SQL, in one place to review.

A worker's steady state is claim -> run -> checkpoint; every statement here runs once or
more per step, so each one does in one round trip what the ORM would do in several. Only
PostgreSQL uses the raw statements (callers check `connection.features` first); other
databases keep the ORM path beside each caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg
from django.db import connections
from django.db.models import DEFERRED, JSONField, Model

from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    ExecutionStatus,
    FlowSlot,
    PendingInput,
    QueueState,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowEvent,
    WorkflowExecution,
)

M = TypeVar("M", bound=Model)
T = TypeVar("T")


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


# Written into the statements, not bound: a prepared statement's generic plan can then use
# the partial indexes on claimable tasks, whose predicate a parameter cannot match.
_CLAIMABLE = "(" + ", ".join(f"'{status}'" for status in CLAIMABLE_TASK_STATUSES) + ")"


class Pending(Generic[T]):
    """A statement sent on Durable's connection, its rows read when first asked for.

    Inside `pipeline`, statements sent one after another travel together and the server
    runs them back to back: a batch checkpoint costs a few round trips, not one per
    statement. Outside one, the statement has run (or raised) by the time it is returned.
    """

    def __init__(
        self,
        using: str,
        cursor: psycopg.Cursor[Any],
        build: Callable[[list[str], list[Any]], T] | None,
    ) -> None:
        self.using = using
        self.cursor = cursor
        self.build = build
        self._value: T | None = None
        self._read = False

    def result(self) -> T:
        if not self._read:
            with connections[self.using].wrap_database_errors:
                rows = self.cursor.fetchall() if self.build is not None else []
                names = [column.name for column in self.cursor.description or ()]
            self.cursor.close()
            self._read = True
            if self.build is not None:
                self._value = self.build(names, rows)
        return self._value  # type: ignore[return-value]


def _send(
    using: str,
    sql: str,
    params: dict[str, Any],
    build: Callable[[list[str], list[Any]], T] | None = None,
) -> Pending[T]:
    """Send `sql` on Durable's connection; `build` makes the result of its rows.

    Parameters are bound on the server (sent apart from the statement, not quoted into it
    in Python, which costs more than the statement for the arrays a batch sends), and the
    statement is prepared once per connection when the database settings allow prepared
    statements (`OPTIONS["prepare_threshold"]`; Django leaves them off for poolers)."""
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    cursor = psycopg.Cursor(raw)
    with connection.wrap_database_errors:
        cursor.execute(sql, params, prepare=None if raw.prepare_threshold is None else True)
    if connection.queries_logged:
        # What CaptureQueriesContext and DEBUG's connection.queries count (bench/statements.py).
        connection.queries_log.append({"sql": sql, "time": "0.000"})
    return Pending(using, cursor, build)


@contextmanager
def pipeline(using: str) -> Iterator[None]:
    """Send the statements of the block together (psycopg's pipeline mode); reading a
    result inside waits for what was sent before it. Errors surface at the latest when
    the block ends, which sends and waits for everything."""
    connection = connections[using]
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def _models(
    model: type[M], using: str, names: list[str], rows: list[Any], prefix: str = ""
) -> list[M]:
    """Model instances from raw rows, from the columns named `prefix` + column (the others
    are deferred). JSON columns arrive as text on Django's connections, as its
    from_db_value expects them."""
    fields = model._meta.concrete_fields
    where = {name[len(prefix) :]: i for i, name in enumerate(names) if name.startswith(prefix)}
    picks = [(where.get(str(f.column)), isinstance(f, JSONField)) for f in fields]
    attnames = [f.attname for f in fields]
    instances = []
    for row in rows:
        values = [
            DEFERRED
            if index is None
            else (json.loads(row[index]) if is_json and row[index] is not None else row[index])
            for index, is_json in picks
        ]
        instances.append(model.from_db(using, attnames, values))
    return instances


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

# One statement claims: lock due rows (skipping rows other workers hold), stamp the lease
# and return the claimed rows with what the claim needs of their executions. A paused
# queue matches nothing, so an idle poll is this statement alone. The inner
# ORDER BY/LIMIT walks durable_task_ready_idx.
CLAIM_SQL = f"""
WITH claimed AS (
UPDATE {_table(Task)} AS t
   SET status = %(claimed)s, lease_token = %(token)s, leased_by = %(worker)s,
       lease_expires_at = %(expires)s, claims = t.claims + 1
 WHERE t.id IN (
       SELECT id FROM {_table(Task)}
        WHERE queue = %(queue)s AND status IN {_CLAIMABLE} AND run_at <= %(now)s
          AND NOT EXISTS (SELECT 1 FROM {_table(QueueState)} WHERE name = %(queue)s AND paused)
        ORDER BY priority DESC, run_at, id
        LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED)
RETURNING t.*)
SELECT claimed.*, {", ".join(f"e.{name} AS e__{name}" for name in CLAIM_EXECUTION_FIELDS)},
       EXISTS (SELECT 1 FROM {_table(WorkflowEvent)} AS ev
                WHERE ev.execution_id = claimed.execution_id AND ev.consumed_at IS NULL)
         AS open_events,
       EXISTS (SELECT 1 FROM {_table(WorkflowExecution)} AS c
                WHERE c.parent_id = claimed.execution_id) AS has_children
  FROM claimed JOIN {_table(WorkflowExecution)} AS e ON e.id = claimed.execution_id
"""


def claim_ready(
    queue: str, limit: int, lease: Lease, now: datetime, using: str
) -> Pending[list[Task]]:
    """PostgreSQL: claim up to `limit` due tasks of `queue` in one statement, best first,
    each with its `execution` (CLAIM_EXECUTION_FIELDS only)."""
    params = {
        "claimed": TaskStatus.CLAIMED.value,
        "token": lease.token,
        "worker": lease.worker_id,
        "expires": lease.expires_at,
        "queue": queue,
        "now": now,
        "limit": limit,
    }

    def build(names: list[str], rows: list[Any]) -> list[Task]:
        tasks = _models(Task, using, names, rows)
        executions = _models(WorkflowExecution, using, names, rows, prefix="e__")
        flags = names.index("open_events"), names.index("has_children")
        for task, execution, row in zip(tasks, executions, rows, strict=True):
            task.execution = execution
            task.claim_saw = (bool(row[flags[0]]), bool(row[flags[1]]))
        tasks.sort(key=lambda task: (-task.priority, task.run_at, task.id))
        return tasks

    return _send(using, CLAIM_SQL, params, build)


# Whether a queue is paused, and the highest priority due on it, in one round trip. The
# second is written as ORDER BY ... LIMIT 1 so that it reads the first entry of
# durable_task_ready_idx even before the table has statistics (max() may then scan every
# due task of the queue, per batch).
QUEUE_HEAD_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {_table(QueueState)} WHERE name = %(queue)s AND paused),
       (SELECT priority FROM {_table(Task)}
         WHERE queue = %(queue)s AND status IN {_CLAIMABLE} AND run_at <= %(now)s
         ORDER BY priority DESC LIMIT 1)
"""


@dataclass(frozen=True)
class QueueHead:
    paused: bool
    top_priority: int | None  # of the tasks due now; None: none is

    def yields(self, priority: int) -> bool:
        """Whether work of `priority` must go back to the queue instead of being chained:
        the queue is paused, or a task of higher priority is due on it."""
        return self.paused or (self.top_priority is not None and self.top_priority > priority)


def queue_head(queue: str, now: datetime, using: str) -> Pending[QueueHead]:
    params = {
        "queue": queue,
        "now": now,
    }

    def build(names: list[str], rows: list[Any]) -> QueueHead:
        paused, top = rows[0]
        return QueueHead(bool(paused), top)

    return _send(using, QUEUE_HEAD_SQL, params, build)


def yields_to_queue(queue: str, priority: int, now: datetime, using: str) -> bool:
    """Whether work of `priority` must go back to `queue` instead of being chained (see
    QueueHead.yields): claims go by priority."""
    if supported(using):
        return queue_head(queue, now, using).result().yields(priority)
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


MARK_RUNNING_SQL = f"""
UPDATE {_table(WorkflowExecution)} AS e
   SET status = %(running)s, started_at = COALESCE(e.started_at, %(now)s)
 WHERE e.id IN (SELECT id FROM {_table(WorkflowExecution)}
                 WHERE id = ANY(%(pks)s) AND status = ANY(%(not_running)s)
                   FOR NO KEY UPDATE SKIP LOCKED)
"""


def mark_running(pks: Iterable[int], now: datetime, using: str) -> Pending[None]:
    """Mark the pending or waiting executions among `pks` running, skipping the rows
    another transaction holds (see durable.store.claims._mark_running)."""
    params = {
        "running": ExecutionStatus.RUNNING.value,
        "now": now,
        "pks": list(pks),
        "not_running": [ExecutionStatus.PENDING.value, ExecutionStatus.WAITING.value],
    }
    return _send(using, MARK_RUNNING_SQL, params)


DELETE_TASK_SQL = f"""
DELETE FROM {_table(Task)} WHERE id = %(id)s AND lease_token = %(token)s RETURNING *
"""


def delete_task(task_id: int, lease_token: uuid.UUID, using: str) -> Task | None:
    """Delete our task row if the lease is still ours; return what it held (else None).
    One statement for what a locking SELECT and a DELETE did."""
    params = {"id": task_id, "token": lease_token}
    rows = _send(using, DELETE_TASK_SQL, params, lambda *r: _models(Task, using, *r)).result()
    return rows[0] if rows else None


# What an execution reaching its final status drops once its tasks are deleted (a statement
# of its own, first, as every path that ends an execution takes its locks in that order),
# in one round trip: the attempts still running or parked elsewhere (they can no longer
# commit), its pending inputs, and its concurrency slot (returned, for the next execution
# in line to be admitted). Data-modifying CTEs all run whether or not the SELECT reads them.
FINISH_SQL = f"""
WITH steps AS (UPDATE {_table(StepExecution)}
                  SET status = %(failed)s, completed_at = %(now)s, error = %(error)s::jsonb
                WHERE execution_id = ANY(%(pks)s) AND status = ANY(%(unfinished)s)),
     inputs AS (UPDATE {_table(PendingInput)} SET status = %(cancelled)s, completed_at = %(now)s
                 WHERE execution_id = ANY(%(pks)s) AND status = %(pending)s),
     slot AS (DELETE FROM {_table(FlowSlot)} WHERE execution_id = ANY(%(pks)s)
              RETURNING scope, admitted)
SELECT scope, admitted FROM slot
"""


def finish_cleanup(
    execution_pks: Sequence[int], now: datetime, error: dict[str, Any], using: str
) -> Pending[list[tuple[str, bool]]]:
    """PostgreSQL: drop what finishing executions leave behind (see FINISH_SQL); returns
    the (scope, admitted) of the concurrency slots they held."""
    params = {
        "pks": list(execution_pks),
        "failed": StepStatus.FAILED.value,
        "now": now,
        "error": json.dumps(error),
        "unfinished": [StepStatus.RUNNING.value, StepStatus.WAITING.value],
        "cancelled": PendingInput.Status.CANCELLED.value,
        "pending": PendingInput.Status.PENDING.value,
    }

    def build(names: list[str], rows: list[Any]) -> list[tuple[str, bool]]:
        return [(str(scope), bool(admitted)) for scope, admitted in rows]

    return _send(using, FINISH_SQL, params, build)


DELETE_EXECUTION_TASKS_SQL = f"""
DELETE FROM {_table(Task)} WHERE execution_id = ANY(%(pks)s)
"""


def delete_execution_tasks(execution_pks: Sequence[int], using: str) -> Pending[None]:
    return _send(using, DELETE_EXECUTION_TASKS_SQL, {"pks": list(execution_pks)})


# -- batch checkpoints (durable.store.batch): one statement per kind of write per batch ---

LOCK_EXECUTIONS_SQL = f"""
SELECT * FROM {_table(WorkflowExecution)} WHERE id = ANY(%(pks)s) ORDER BY id FOR NO KEY UPDATE
"""


def lock_executions(pks: Iterable[int], using: str) -> Pending[dict[int, WorkflowExecution]]:
    """Lock the executions `pks`, in id order (every batch takes them in the same order,
    so two batches never wait for each other in a cycle)."""

    def build(names: list[str], rows: list[Any]) -> dict[int, WorkflowExecution]:
        return {e.pk: e for e in _models(WorkflowExecution, using, names, rows)}

    return _send(using, LOCK_EXECUTIONS_SQL, {"pks": sorted(pks)}, build)


DELETE_TASKS_SQL = f"""
DELETE FROM {_table(Task)} AS t
 USING unnest(%(ids)s::bigint[], %(tokens)s::uuid[]) AS d(id, token)
 WHERE t.id = d.id AND t.lease_token = d.token
RETURNING t.*
"""


def delete_tasks(leases: Iterable[tuple[int, uuid.UUID]], using: str) -> Pending[dict[int, Task]]:
    """Delete the tasks whose (id, lease token) pairs are given and still ours: the ones
    returned, by id. A task missing from the result was lost (retaken, or its execution
    ended)."""
    pairs = list(leases)
    params = {"ids": [task_id for task_id, _ in pairs], "tokens": [token for _, token in pairs]}

    def build(names: list[str], rows: list[Any]) -> dict[int, Task]:
        return {task.id: task for task in _models(Task, using, names, rows)}

    return _send(using, DELETE_TASKS_SQL, params, build)


@dataclass(frozen=True)
class AttemptOutcome:
    """A completed attempt's row, keyed as the claim inserted it."""

    execution_id: int
    step: str
    scope_key: str
    kind: str
    attempt: int
    output: Any
    duration_ms: int
    logs: list[dict[str, Any]] | None  # None: keep what the row has


COMPLETE_ATTEMPTS_SQL = f"""
UPDATE {_table(StepExecution)} AS s
   SET status = %(completed)s, output = d.output::jsonb, completed_at = %(now)s,
       duration_ms = d.duration_ms, logs = COALESCE(d.logs::jsonb, s.logs)
  FROM unnest(%(executions)s::bigint[], %(steps)s::text[], %(scopes)s::text[],
              %(kinds)s::text[], %(attempts)s::int[], %(outputs)s::text[],
              %(durations)s::bigint[], %(logs)s::text[])
       AS d(execution_id, step, scope_key, kind, attempt, output, duration_ms, logs)
 WHERE s.execution_id = d.execution_id AND s.step = d.step AND s.scope_key = d.scope_key
   AND s.kind = d.kind AND s.attempt = d.attempt
"""


def complete_attempts(outcomes: list[AttemptOutcome], now: datetime, using: str) -> Pending[None]:
    """Mark the attempt rows of `outcomes` completed, with their outputs and logs."""
    return _send(
        using,
        COMPLETE_ATTEMPTS_SQL,
        {
            "completed": StepStatus.COMPLETED.value,
            "now": now,
            "executions": [o.execution_id for o in outcomes],
            "steps": [o.step for o in outcomes],
            "scopes": [o.scope_key for o in outcomes],
            "kinds": [o.kind for o in outcomes],
            "attempts": [o.attempt for o in outcomes],
            # JSONField stores None as SQL NULL, and so does this.
            "outputs": [_json_or_null(o.output) for o in outcomes],
            "durations": [o.duration_ms for o in outcomes],
            "logs": [_json_or_null(o.logs) for o in outcomes],
        },
    )


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


# The columns a step's checkpoint may change on its execution (anything else changed goes
# through the ORM's save, see durable.store.batch).
BATCH_EXECUTION_FIELDS = (
    "context",
    "fanouts",
    "current_step",
    "status",
    "started_at",
    "updated_at",
    "result",
    "result_explicit",
    "completed_at",
    "duration_ms",
)

UPDATE_EXECUTIONS_SQL = f"""
UPDATE {_table(WorkflowExecution)} AS e
   SET context = d.context::jsonb, fanouts = d.fanouts::jsonb, current_step = d.current_step,
       status = d.status, started_at = d.started_at, updated_at = %(now)s,
       result = d.result::jsonb,
       result_explicit = d.result_explicit, completed_at = d.completed_at,
       duration_ms = d.duration_ms
  FROM unnest(%(pks)s::bigint[], %(contexts)s::text[], %(fanouts)s::text[],
              %(steps)s::text[], %(statuses)s::text[], %(started)s::timestamptz[],
              %(results)s::text[], %(explicit)s::bool[], %(completed)s::timestamptz[],
              %(durations)s::bigint[])
       AS d(id, context, fanouts, current_step, status, started_at, result, result_explicit,
            completed_at, duration_ms)
 WHERE e.id = d.id
"""


def update_executions(
    executions: list[WorkflowExecution], now: datetime, using: str
) -> Pending[None]:
    """Write BATCH_EXECUTION_FIELDS of `executions` (updated_at = `now`) in one statement."""
    for execution in executions:
        execution.updated_at = now
    return _send(
        using,
        UPDATE_EXECUTIONS_SQL,
        {
            "pks": [e.pk for e in executions],
            "contexts": [json.dumps(e.context) for e in executions],
            "fanouts": [json.dumps(e.fanouts) for e in executions],
            "steps": [e.current_step for e in executions],
            "statuses": [str(e.status) for e in executions],
            "started": [e.started_at for e in executions],
            "now": now,
            "results": [_json_or_null(e.result) for e in executions],
            "explicit": [e.result_explicit for e in executions],
            "completed": [e.completed_at for e in executions],
            "durations": [e.duration_ms for e in executions],
        },
    )


INSERT_TASKS_SQL = f"""
INSERT INTO {_table(Task)} (execution_id, kind, step, token, queue, priority, run_at, status,
                            attempt, claims, expiries, lease_token, leased_by,
                            lease_expires_at, wait, created_at)
SELECT d.execution_id, d.kind, d.step, d.token::jsonb, d.queue, d.priority, d.run_at,
       d.status, d.attempt, d.claims, d.expiries, d.lease_token, d.leased_by,
       d.lease_expires_at, d.wait::jsonb, %(now)s
  FROM unnest(%(executions)s::bigint[], %(kinds)s::text[], %(steps)s::text[],
              %(tokens)s::text[], %(queues)s::text[], %(priorities)s::int[],
              %(run_at)s::timestamptz[], %(statuses)s::text[], %(attempts)s::int[],
              %(claims)s::int[], %(expiries)s::int[], %(lease_tokens)s::uuid[],
              %(leased_by)s::text[], %(lease_expires)s::timestamptz[], %(waits)s::text[])
       WITH ORDINALITY
       AS d(execution_id, kind, step, token, queue, priority, run_at, status, attempt, claims,
            expiries, lease_token, leased_by, lease_expires_at, wait, n)
 ORDER BY d.n
RETURNING id
"""


def insert_tasks(tasks: Sequence[Task], now: datetime, using: str) -> Pending[None]:
    """Insert `tasks` in one statement; each gets its id (as from bulk_create) once the
    result is read."""
    params = {
        "now": now,
        "executions": [t.execution_id for t in tasks],
        "kinds": [t.kind for t in tasks],
        "steps": [t.step for t in tasks],
        "tokens": [json.dumps(t.token) for t in tasks],
        "queues": [t.queue for t in tasks],
        "priorities": [t.priority for t in tasks],
        "run_at": [t.run_at for t in tasks],
        "statuses": [str(t.status) for t in tasks],
        "attempts": [t.attempt for t in tasks],
        "claims": [t.claims for t in tasks],
        "expiries": [t.expiries for t in tasks],
        "lease_tokens": [t.lease_token for t in tasks],
        "leased_by": [t.leased_by for t in tasks],
        "lease_expires": [t.lease_expires_at for t in tasks],
        "waits": [_json_or_null(t.wait) for t in tasks],
    }

    def build(names: list[str], rows: list[Any]) -> None:
        for task, (task_id,) in zip(tasks, rows, strict=True):
            task.id = task_id
            task.created_at = now
            task._state.adding = False
            task._state.db = using

    return _send(using, INSERT_TASKS_SQL, params, build)


@dataclass(frozen=True)
class AttemptStart:
    """A running attempt's row, inserted as its task is claimed."""

    execution_id: int
    step: str
    scope_key: str
    kind: str
    attempt: int
    input: Any
    context_before: Any


# A retaken attempt starts over: nothing of the run that died is kept on its row.
START_ATTEMPTS_SQL = f"""
INSERT INTO {_table(StepExecution)} AS s (execution_id, step, scope_key, kind, attempt, status,
                                        started_at, input, worker_id, context_before, logs)
SELECT d.execution_id, d.step, d.scope_key, d.kind, d.attempt, %(running)s, %(now)s,
       d.input::jsonb, %(worker)s, d.context_before::jsonb, '[]'::jsonb
  FROM unnest(%(executions)s::bigint[], %(steps)s::text[], %(scopes)s::text[],
              %(kinds)s::text[], %(attempts)s::int[], %(inputs)s::text[],
              %(contexts)s::text[])
       AS d(execution_id, step, scope_key, kind, attempt, input, context_before)
    ON CONFLICT (execution_id, step, scope_key, kind, attempt) DO UPDATE
   SET status = EXCLUDED.status, started_at = EXCLUDED.started_at,
       worker_id = EXCLUDED.worker_id, completed_at = NULL, duration_ms = NULL, error = NULL
"""


def start_attempts(
    attempts: Sequence[AttemptStart], worker_id: str, now: datetime, using: str
) -> Pending[None]:
    """Upsert a `running` row per attempt (see START_ATTEMPTS_SQL)."""
    params = {
        "running": StepStatus.RUNNING.value,
        "now": now,
        "worker": worker_id,
        "executions": [a.execution_id for a in attempts],
        "steps": [a.step for a in attempts],
        "scopes": [a.scope_key for a in attempts],
        "kinds": [a.kind for a in attempts],
        "attempts": [a.attempt for a in attempts],
        "inputs": [_json_or_null(a.input) for a in attempts],
        "contexts": [_json_or_null(a.context_before) for a in attempts],
    }
    return _send(using, START_ATTEMPTS_SQL, params)
