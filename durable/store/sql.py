"""The hand-written SQL of the PostgreSQL backend, in one place to review.

A worker's steady state is claim -> run -> checkpoint; every statement here runs once or
more per step, so each one does in one round trip what the ORM would do in several. Only
`durable.store.backend.PostgresBackend` runs them; the generic backend says the same with
the ORM.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg
from django.db import connections
from django.db.models import JSONField, Model
from django.db.models.base import ModelState

from durable import codecs
from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    ExecutionStatus,
    FanoutBranch,
    FlowSlot,
    PayloadField,
    PendingInput,
    QueueState,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowEvent,
    WorkflowExecution,
)
from durable.store.rows import (
    AttemptEnd,
    AttemptStart,
    BranchRow,
    Lease,
    NewExecution,
    NewTask,
    QueueHead,
)

M = TypeVar("M", bound=Model)
T = TypeVar("T")


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


def send(
    using: str,
    sql: str,
    params: dict[str, Any],
    build: Callable[[list[str], list[Any]], T] | None = None,
) -> Pending[T]:
    """Send `sql` on the connection of `using` (inside its current transaction, if any);
    `build` makes the result of its rows.

    Parameters are bound on the server (sent apart from the statement, not quoted into it
    in Python, which costs more than the statement for the arrays a batch sends); arrays go
    in binary (`%(name)b`: no per-element quoting, a tenth of the CPU for 10,000 elements).
    The statement is prepared once per connection when the database settings allow
    prepared statements (`OPTIONS["prepare_threshold"]`; Django leaves them off for
    poolers)."""
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


class Done(Pending[T]):
    """A result already at hand (the generic backend's statements have run)."""

    def __init__(self, value: T) -> None:
        self._value = value
        self._read = True


@contextmanager
def pipeline(using: str) -> Iterator[None]:
    """Send the statements of the block together (psycopg's pipeline mode); reading a
    result inside waits for what was sent before it. Errors surface at the latest when
    the block ends, which sends and waits for everything."""
    connection = connections[using]
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def _loaded(text: str, is_payload: bool) -> Any:
    value = json.loads(text)
    return codecs.decode(value) if is_payload else value


def _models(
    model: type[M], using: str, names: list[str], rows: list[Any], prefix: str = ""
) -> list[M]:
    """Model instances from raw rows, from the columns named `prefix` + column (the others
    are deferred). JSON columns arrive as text on Django's connections, as its
    from_db_value expects them."""
    fields = model._meta.concrete_fields
    where = {name[len(prefix) :]: i for i, name in enumerate(names) if name.startswith(prefix)}
    # Deferred columns are left out: an instance without an attribute loads it on access.
    picks = [
        (f.attname, where[str(f.column)], isinstance(f, JSONField), isinstance(f, PayloadField))
        for f in fields
        if str(f.column) in where
    ]
    instances = []
    for row in rows:
        # What Model.from_db makes, without Model.__init__ (a third of a checkpoint's CPU
        # went there): the same attributes, and a state saying the row exists in `using`.
        instance = model.__new__(model)
        instance.__dict__.update(
            (attname, _loaded(row[i], is_payload) if is_json and row[i] is not None else row[i])
            for attname, i, is_json, is_payload in picks
        )
        state = ModelState()
        state.adding = False
        state.db = using
        instance._state = state
        instances.append(instance)
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
    "parent_id",  # a child's checkpoints go alone (its end wakes the parent)
    "patches",  # the run's ctx.patched answers
    "trace_context",  # the step's span joins the run's trace (durable.telemetry.tracing)
)

# One statement claims: lock due rows (skipping rows other workers hold), stamp the lease
# and return the claimed rows with what the claim needs of their executions, and whether
# those have unconsumed events or children (durable.engine.waits). A paused queue matches
# nothing, so an idle poll is this statement alone. The inner ORDER BY/LIMIT walks
# durable_task_ready_idx. A queue with a global cap (`cap`) claims at most what its
# running tasks leave free: the caller holds the queue's gate (GATE_SQL) first, so the
# count is not outdated by a claim committing meanwhile.
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
        LIMIT CASE WHEN %(cap)s::int IS NULL THEN %(limit)s::int
                   ELSE GREATEST(LEAST(%(limit)s::int, %(cap)s::int - (
                          SELECT count(*) FROM {_table(Task)}
                           WHERE status = '{TaskStatus.CLAIMED.value}' AND queue = %(queue)s)),
                                 0) END
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


# The gate of a queue with a global cap: claims of the queue take turns, each holding it
# until its transaction ends (a transaction-level advisory lock, so no row is needed).
GATE_SQL = "SELECT pg_advisory_xact_lock(%(key)s)"


def gate(key: int, using: str) -> None:
    send(using, GATE_SQL, {"key": key}).result()


def claim_ready(
    queue: str, limit: int, lease: Lease, now: datetime, using: str, cap: int | None = None
) -> Pending[list[Task]]:
    """Claim up to `limit` due tasks of `queue` in one statement, best first, each with its
    `execution` (CLAIM_EXECUTION_FIELDS only) and `claim_saw`; with a `cap`, no more than
    leaves `cap` tasks of the queue claimed in all (hold its gate first)."""
    columns = lease.columns()
    params = {
        "cap": cap,
        "claimed": str(columns["status"]),
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

    return send(using, CLAIM_SQL, params, build)


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


def queue_head(queue: str, now: datetime, using: str) -> Pending[QueueHead]:
    def build(names: list[str], rows: list[Any]) -> QueueHead:
        paused, top = rows[0]
        return QueueHead(bool(paused), top)

    return send(using, QUEUE_HEAD_SQL, {"queue": queue, "now": now}, build)


MARK_RUNNING_SQL = f"""
UPDATE {_table(WorkflowExecution)} AS e
   SET status = %(running)s, started_at = COALESCE(e.started_at, %(now)s)
 WHERE e.id IN (SELECT id FROM {_table(WorkflowExecution)}
                 WHERE id = ANY(%(pks)b) AND status = ANY(%(not_running)b)
                   FOR NO KEY UPDATE SKIP LOCKED)
"""


def mark_running(pks: Iterable[int], now: datetime, using: str) -> Pending[None]:
    """Mark the pending or waiting executions among `pks` running, skipping the rows
    another transaction holds (see durable.store.claims.start_claims)."""
    params = {
        "running": ExecutionStatus.RUNNING.value,
        "now": now,
        "pks": list(pks),
        "not_running": [ExecutionStatus.PENDING.value, ExecutionStatus.WAITING.value],
    }
    return send(using, MARK_RUNNING_SQL, params)


# What executions reaching their final status drop once their tasks are deleted (a
# statement of its own, first, as every path that ends an execution takes its locks in
# that order), in one round trip: the attempts still running or parked elsewhere (they can
# no longer commit), their pending inputs, their fan-outs' branches, and their concurrency
# slots (returned, for the
# next execution in line to be admitted). Data-modifying CTEs all run whether or not the
# SELECT reads them.
FINISH_SQL = f"""
WITH steps AS (UPDATE {_table(StepExecution)}
                  SET status = %(failed)s, completed_at = %(now)s, error = %(error)s::jsonb
                WHERE execution_id = ANY(%(pks)b) AND status = ANY(%(unfinished)b)),
     inputs AS (UPDATE {_table(PendingInput)} SET status = %(cancelled)s, completed_at = %(now)s
                 WHERE execution_id = ANY(%(pks)b) AND status = %(pending)s),
     branches AS (DELETE FROM {_table(FanoutBranch)} WHERE execution_id = ANY(%(pks)b)),
     slot AS (DELETE FROM {_table(FlowSlot)} WHERE execution_id = ANY(%(pks)b)
              RETURNING scope, admitted)
SELECT scope, admitted FROM slot
"""


def finish_cleanup(
    execution_pks: Sequence[int], now: datetime, error: dict[str, Any], using: str
) -> Pending[list[tuple[str, bool]]]:
    """Drop what finishing executions leave behind (see FINISH_SQL); returns the (scope,
    admitted) of the concurrency slots they held."""
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

    return send(using, FINISH_SQL, params, build)


DELETE_EXECUTION_TASKS_SQL = f"""
DELETE FROM {_table(Task)} WHERE execution_id = ANY(%(pks)b)
"""


def delete_execution_tasks(execution_pks: Sequence[int], using: str) -> Pending[None]:
    return send(using, DELETE_EXECUTION_TASKS_SQL, {"pks": list(execution_pks)})


# What a checkpoint reads of its executions: every column it may read or change; the
# others (never read there, or only on rare paths, which load them on access) stay behind.
CHECKPOINT_SKIPS = (
    "created_at",
    "updated_at",
    "scheduled_at",
    "idempotency_key",
    "workflow_module",
    "definition_version",
)
CHECKPOINT_COLUMNS = ", ".join(
    str(f.column)
    for f in WorkflowExecution._meta.concrete_fields
    if f.attname not in CHECKPOINT_SKIPS
)

LOCK_EXECUTIONS_SQL = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {_table(WorkflowExecution)}
 WHERE id = ANY(%(pks)b) ORDER BY id FOR NO KEY UPDATE
"""


def lock_executions(pks: Iterable[int], using: str) -> Pending[dict[int, WorkflowExecution]]:
    """Lock the executions `pks`, in id order (every checkpoint takes them in the same
    order, so two never wait for each other in a cycle)."""

    def build(names: list[str], rows: list[Any]) -> dict[int, WorkflowExecution]:
        return {e.pk: e for e in _models(WorkflowExecution, using, names, rows)}

    return send(using, LOCK_EXECUTIONS_SQL, {"pks": sorted(pks)}, build)


# A deleted task is read for its attempt's key and its events only.
DELETE_TASKS_SQL = f"""
DELETE FROM {_table(Task)} AS t
 USING unnest(%(ids)b::bigint[], %(tokens)b::uuid[]) AS d(id, token)
 WHERE t.id = d.id AND t.lease_token = d.token
RETURNING t.id, t.execution_id, t.kind, t.step, t.token, t.queue, t.priority, t.attempt
"""

LOCK_TASKS_SQL = f"""
SELECT t.* FROM {_table(Task)} AS t
  JOIN unnest(%(ids)b::bigint[], %(tokens)b::uuid[]) AS d(id, token)
    ON t.id = d.id AND t.lease_token = d.token
 ORDER BY t.id
   FOR UPDATE OF t
"""


def take_tasks(
    leases: Sequence[tuple[int, uuid.UUID]], using: str, *, delete: bool
) -> Pending[dict[int, Task]]:
    """The tasks whose (id, lease token) pairs are given and still ours, by id: deleted
    (`delete`) or locked. A task missing from the result was lost (retaken, or its
    execution ended)."""
    params = {"ids": [task_id for task_id, _ in leases], "tokens": [t for _, t in leases]}

    def build(names: list[str], rows: list[Any]) -> dict[int, Task]:
        return {task.id: task for task in _models(Task, using, names, rows)}

    return send(using, DELETE_TASKS_SQL if delete else LOCK_TASKS_SQL, params, build)


END_ATTEMPTS_SQL = f"""
UPDATE {_table(StepExecution)} AS s
   SET status = d.status, output = d.output::jsonb, error = d.error::jsonb,
       completed_at = %(now)s, duration_ms = d.duration_ms,
       logs = COALESCE(d.logs::jsonb, s.logs)
  FROM unnest(%(executions)b::bigint[], %(steps)b::text[], %(scopes)b::text[],
              %(kinds)b::text[], %(attempts)b::int[], %(statuses)b::text[],
              %(outputs)b::text[], %(errors)b::text[], %(durations)b::bigint[],
              %(logs)b::text[])
       AS d(execution_id, step, scope_key, kind, attempt, status, output, error,
            duration_ms, logs)
 WHERE s.execution_id = d.execution_id AND s.step = d.step AND s.scope_key = d.scope_key
   AND s.kind = d.kind AND s.attempt = d.attempt
"""


def end_attempts(ends: Sequence[AttemptEnd], now: datetime, using: str) -> Pending[None]:
    """Write how the attempts of `ends` ended, in one statement."""
    return send(
        using,
        END_ATTEMPTS_SQL,
        {
            "now": now,
            "executions": [e.key.execution_id for e in ends],
            "steps": [e.key.step for e in ends],
            "scopes": [e.key.scope_key for e in ends],
            "kinds": [e.key.kind for e in ends],
            "attempts": [e.key.attempt for e in ends],
            "statuses": [e.status for e in ends],
            # JSONField stores None as SQL NULL, and so does this.
            "outputs": [payload_or_null(e.output) for e in ends],
            "errors": [json_or_null(e.error) for e in ends],
            "durations": [e.duration_ms for e in ends],
            "logs": [json_or_null(e.logs) for e in ends],
        },
    )


def json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def payload(value: Any) -> str:
    """A PayloadField's value as the JSON text stored: through the codec (durable.codecs)."""
    return json.dumps(codecs.encode(value))


def payload_or_null(value: Any) -> str | None:
    return None if value is None else payload(value)


# The columns a checkpoint writes on its executions in one statement; an execution with
# other changed columns is saved by the ORM (durable.store.backend.save_executions).
# NULL context/fanouts: unchanged (they may be large, and most steps leave them alone).
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
   SET context = COALESCE(d.context::jsonb, e.context),
       fanouts = COALESCE(d.fanouts::jsonb, e.fanouts), current_step = d.current_step,
       status = d.status, started_at = d.started_at, updated_at = %(now)s,
       result = d.result::jsonb,
       result_explicit = d.result_explicit, completed_at = d.completed_at,
       duration_ms = d.duration_ms
  FROM unnest(%(pks)b::bigint[], %(contexts)b::text[], %(fanouts)b::text[],
              %(steps)b::text[], %(statuses)b::text[], %(started)b::timestamptz[],
              %(results)b::text[], %(explicit)b::bool[], %(completed)b::timestamptz[],
              %(durations)b::bigint[])
       AS d(id, context, fanouts, current_step, status, started_at, result, result_explicit,
            completed_at, duration_ms)
 WHERE e.id = d.id
"""


def update_executions(
    executions: Sequence[tuple[WorkflowExecution, set[str]]], now: datetime, using: str
) -> Pending[None]:
    """Write BATCH_EXECUTION_FIELDS of `executions` (updated_at = `now`) in one statement;
    each comes with the attnames that changed (context and fanouts are sent only then)."""
    for execution, _ in executions:
        execution.updated_at = now
    return send(
        using,
        UPDATE_EXECUTIONS_SQL,
        {
            "pks": [e.pk for e, _ in executions],
            "contexts": [payload(e.context) if "context" in c else None for e, c in executions],
            "fanouts": [payload(e.fanouts) if "fanouts" in c else None for e, c in executions],
            "steps": [e.current_step for e, _ in executions],
            "statuses": [str(e.status) for e, _ in executions],
            "started": [e.started_at for e, _ in executions],
            "now": now,
            "results": [payload_or_null(e.result) for e, _ in executions],
            "explicit": [e.result_explicit for e, _ in executions],
            "completed": [e.completed_at for e, _ in executions],
            "durations": [e.duration_ms for e, _ in executions],
        },
    )


INSERT_TASKS_SQL = f"""
INSERT INTO {_table(Task)} (execution_id, kind, step, token, queue, priority, run_at, status,
                            attempt, claims, expiries, lease_token, leased_by,
                            lease_expires_at, wait, created_at)
SELECT d.execution_id, d.kind, d.step, d.token::jsonb, d.queue, d.priority, d.run_at,
       d.status, d.attempt, d.claims, d.expiries, d.lease_token, d.leased_by,
       d.lease_expires_at, d.wait::jsonb, %(now)s
  FROM unnest(%(executions)b::bigint[], %(kinds)b::text[], %(steps)b::text[],
              %(tokens)b::text[], %(queues)b::text[], %(priorities)b::int[],
              %(run_at)b::timestamptz[], %(statuses)b::text[], %(attempts)b::int[],
              %(claims)b::int[], %(expiries)b::int[], %(lease_tokens)b::uuid[],
              %(leased_by)b::text[], %(lease_expires)b::timestamptz[], %(waits)b::text[])
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
        "tokens": [payload(t.token) for t in tasks],
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
        "waits": [json_or_null(t.wait) for t in tasks],
    }

    def build(names: list[str], rows: list[Any]) -> None:
        for task, (task_id,) in zip(tasks, rows, strict=True):
            task.id = task_id
            task.created_at = now
            task._state.adding = False
            task._state.db = using

    return send(using, INSERT_TASKS_SQL, params, build)


# A retaken attempt starts over: nothing of the run that died is kept on its row.
START_ATTEMPTS_SQL = f"""
INSERT INTO {_table(StepExecution)} AS s (execution_id, step, scope_key, kind, attempt, status,
                                        started_at, input, worker_id, context_before, logs)
SELECT d.execution_id, d.step, d.scope_key, d.kind, d.attempt, %(running)s, %(now)s,
       d.input::jsonb, %(worker)s, d.context_before::jsonb, '[]'::jsonb
  FROM unnest(%(executions)b::bigint[], %(steps)b::text[], %(scopes)b::text[],
              %(kinds)b::text[], %(attempts)b::int[], %(inputs)b::text[],
              %(contexts)b::text[])
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
        "executions": [a.key.execution_id for a in attempts],
        "steps": [a.key.step for a in attempts],
        "scopes": [a.key.scope_key for a in attempts],
        "kinds": [a.key.kind for a in attempts],
        "attempts": [a.key.attempt for a in attempts],
        "inputs": [payload_or_null(a.input) for a in attempts],
        "contexts": [payload_or_null(a.context_before) for a in attempts],
    }
    return send(using, START_ATTEMPTS_SQL, params)


RENEW_LEASES_SQL = f"""
UPDATE {_table(Task)} AS t SET lease_expires_at = %(expires)s
  FROM unnest(%(ids)b::bigint[], %(tokens)b::uuid[]) AS d(id, token)
 WHERE t.id = d.id AND t.lease_token = d.token
RETURNING t.id
"""


def renew_leases(
    leases: Sequence[tuple[int, uuid.UUID]], expires_at: datetime, using: str
) -> Pending[set[int]]:
    """Extend the leases still held; the ids of their tasks."""
    params = {
        "ids": [task_id for task_id, _ in leases],
        "tokens": [t for _, t in leases],
        "expires": expires_at,
    }
    return send(using, RENEW_LEASES_SQL, params, lambda names, rows: {row[0] for row in rows})


WRITE_BRANCHES_SQL = f"""
INSERT INTO {_table(FanoutBranch)} (execution_id, fanout, "index", item, ops)
SELECT d.execution_id, d.fanout, d.index, d.item::jsonb, d.ops::jsonb
  FROM unnest(%(executions)b::bigint[], %(fanouts)b::bigint[], %(indexes)b::int[],
              %(items)b::text[], %(ops)b::text[])
       AS d(execution_id, fanout, index, item, ops)
    ON CONFLICT (execution_id, fanout, "index") DO UPDATE SET ops = EXCLUDED.ops
"""


def write_branches(rows: Sequence[BranchRow], using: str) -> Pending[None]:
    """Insert parked items and record finished branches (their ops), in one statement."""
    params = {
        "executions": [r[0] for r in rows],
        "fanouts": [r[1] for r in rows],
        "indexes": [r[2] for r in rows],
        "items": [payload_or_null(r[3]) for r in rows],
        "ops": [payload_or_null(r[4]) for r in rows],
    }
    return send(using, WRITE_BRANCHES_SQL, params)


DROP_BRANCHES_SQL = f"""
DELETE FROM {_table(FanoutBranch)} WHERE execution_id = %(execution)s AND fanout = ANY(%(keys)b)
"""


def drop_branches(execution_pk: int, keys: Sequence[int], using: str) -> Pending[None]:
    return send(using, DROP_BRANCHES_SQL, {"execution": execution_pk, "keys": list(keys)})


# Starting executions in one statement: the executions (a known idempotency key inserts
# nothing), the first tasks of those inserted, and a NOTIFY per queue that got due work.
# Data-modifying CTEs run whether or not the outer SELECT reads them; `woken` is read so
# that its pg_notify calls run.
START_SQL = f"""
WITH d AS (
  SELECT * FROM unnest(%(wids)b::text[], %(modules)b::text[], %(names)b::text[],
                       %(queues)b::text[], %(priorities)b::int[], %(inputs)b::text[],
                       %(contexts)b::text[], %(fanouts)b::text[], %(steps)b::text[],
                       %(scheduled)b::timestamptz[], %(keys)b::text[],
                       %(deadlines)b::timestamptz[], %(parents)b::bigint[],
                       %(versions)b::text[], %(fingerprints)b::text[], %(traces)b::text[])
         WITH ORDINALITY
         AS d(workflow_id, module, name, queue, priority, input, context, fanouts, step,
              scheduled_at, idempotency_key, deadline_at, parent_id, version, fingerprint,
              trace_context, n)
),
e AS (
  INSERT INTO {_table(WorkflowExecution)} AS x
         (workflow_id, workflow_module, workflow_name, status, queue, priority, input, context,
          current_step, scheduled_at, created_at, updated_at, idempotency_key,
          definition_version, deadline_at, fanouts, parent_id, result_explicit,
          definition_fingerprint, attempt_floor, patches, trace_context)
  SELECT d.workflow_id, d.module, d.name, %(pending)s, d.queue, d.priority, d.input::jsonb,
         d.context::jsonb, d.step, d.scheduled_at, %(now)s, %(now)s, d.idempotency_key,
         d.version, d.deadline_at, d.fanouts::jsonb, d.parent_id, false, d.fingerprint, 0,
         '{{}}'::jsonb, d.trace_context::jsonb
    FROM d ORDER BY d.n
      ON CONFLICT (idempotency_key) DO NOTHING
  RETURNING x.id, x.workflow_id
),
t AS (
  INSERT INTO {_table(Task)} (execution_id, kind, step, token, queue, priority, run_at, status,
                              attempt, claims, expiries, leased_by, created_at)
  SELECT e.id, 'step', k.step, k.token::jsonb, k.queue, k.priority, k.run_at, %(ready)s,
         1, 0, 0, '', %(now)s
    FROM unnest(%(task_wids)b::text[], %(task_steps)b::text[], %(tokens)b::text[],
                %(task_queues)b::text[], %(task_priorities)b::int[],
                %(run_at)b::timestamptz[]) WITH ORDINALITY
         AS k(workflow_id, step, token, queue, priority, run_at, n)
    JOIN e ON e.workflow_id = k.workflow_id
   ORDER BY k.n
  RETURNING id, execution_id, queue, priority, run_at
),
woken AS (
  SELECT pg_notify(%(channel)s, queue)
    FROM (SELECT DISTINCT queue FROM t WHERE run_at <= %(now)s) AS q
)
SELECT 'e' AS kind, e.id, e.workflow_id, NULL AS queue, NULL::int AS priority,
       NULL::timestamptz AS run_at, NULL::bigint AS execution_id
  FROM e
UNION ALL
SELECT 't', t.id, NULL, t.queue, t.priority, t.run_at, t.execution_id FROM t
UNION ALL
SELECT 'n', count(*), NULL, NULL, NULL, NULL, NULL FROM woken
"""


def _json_or_null(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


def start_executions(
    executions: Sequence[NewExecution],
    tasks: Sequence[NewTask],
    now: datetime,
    channel: str,
    using: str,
) -> Pending[None]:
    """Insert `executions` but those whose idempotency key exists, and the `tasks` of those
    inserted; NOTIFY `channel` for the queues of due tasks. Each execution inserted gets
    its `pk`, each task inserted its `id`."""
    params = {
        "now": now,
        "pending": ExecutionStatus.PENDING.value,
        "ready": TaskStatus.READY.value,
        "channel": channel,
        "wids": [e.workflow_id for e in executions],
        "modules": [e.module for e in executions],
        "names": [e.name for e in executions],
        "queues": [e.queue for e in executions],
        "priorities": [e.priority for e in executions],
        "inputs": [payload(e.input) for e in executions],
        "contexts": [payload(e.context) for e in executions],
        "fanouts": [payload(e.fanouts) for e in executions],
        "steps": [e.current_step for e in executions],
        "scheduled": [e.scheduled_at for e in executions],
        "keys": [e.idempotency_key for e in executions],
        "deadlines": [e.deadline_at for e in executions],
        "parents": [e.parent_id for e in executions],
        "versions": [e.version for e in executions],
        "fingerprints": [e.fingerprint for e in executions],
        "traces": [_json_or_null(e.trace_context) for e in executions],
        "task_wids": [t.workflow_id for t in tasks],
        "task_steps": [t.step for t in tasks],
        "tokens": [payload(t.token) for t in tasks],
        "task_queues": [t.queue for t in tasks],
        "task_priorities": [t.priority for t in tasks],
        "run_at": [t.run_at for t in tasks],
    }

    def build(names: list[str], rows: list[Any]) -> None:
        pks = {str(wid): int(pk) for kind, pk, wid, *_ in rows if kind == "e"}
        by_execution: dict[int, list[int]] = {}
        for kind, pk, _, _, _, _, execution_id in rows:
            if kind == "t":
                by_execution.setdefault(int(execution_id), []).append(int(pk))
        for execution in executions:
            execution.pk = pks.get(execution.workflow_id)
        for task in tasks:
            pk = pks.get(task.workflow_id)
            if pk is not None:
                task.id = by_execution[pk].pop(0)

    return send(using, START_SQL, params, build)


PARKED_ONLY_SQL = f"""
SELECT execution_id FROM {_table(Task)} WHERE execution_id = ANY(%(pks)b)
 GROUP BY execution_id HAVING bool_and(status = '{TaskStatus.WAITING.value}')
"""


def parked_only(pks: Sequence[int], using: str) -> Pending[set[int]]:
    """Which of the executions `pks` have tasks left, all parked on waits."""
    return send(
        using, PARKED_ONLY_SQL, {"pks": list(pks)}, lambda names, rows: {int(r[0]) for r in rows}
    )


NOTIFY_SQL = (
    "SELECT count(pg_notify(%(channel)s, payload)) FROM unnest(%(payloads)b::text[]) AS payload"
)


def notify(channel: str, payloads: Sequence[str], using: str) -> Pending[None]:
    return send(using, NOTIFY_SQL, {"channel": channel, "payloads": list(payloads)})
