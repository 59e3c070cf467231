"""The database dialect, chosen once per alias: what the store asks of the database.

The claims and the checkpoint say what to read and write; a backend says how. The
PostgreSQL backend runs the named statements of `durable.store.sql` (one round trip per
kind of write for a whole batch, several in one pipeline); the generic backend (SQLite,
and any database Django supports) says the same with the ORM. Nobody else asks "am I on
PostgreSQL?": they ask `backend(using)`.
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.core.signals import setting_changed
from django.db import connections
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.dispatch import receiver

from durable.conf import durable_settings
from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    ExecutionStatus,
    FanoutBranch,
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
from durable.store import sql
from durable.store.rows import (
    AttemptEnd,
    AttemptKey,
    AttemptStart,
    BranchRow,
    Lease,
    NewExecution,
    NewTask,
    QueueHead,
)
from durable.store.sql import Done, Pending

# Freed concurrency slots: (scope, whether it was admitted).
Freed = list[tuple[str, bool]]

_NOT_RUNNING = (ExecutionStatus.PENDING, ExecutionStatus.WAITING)
_UNFINISHED_STEPS = (StepStatus.RUNNING, StepStatus.WAITING)


class Backend(ABC):
    def __init__(self, using: str) -> None:
        self.using = using
        features = connections[using].features
        # FOR UPDATE SKIP LOCKED: claims skip rows other workers hold instead of waiting.
        self.skip_locked = bool(features.has_select_for_update_skip_locked)
        # FOR NO KEY UPDATE: locking an execution does not block the foreign-key checks of
        # rows inserted for it meanwhile (attempt rows of claims).
        self.no_key = bool(features.has_select_for_no_key_update)

    def pipeline(self) -> Any:
        """A block whose statements may travel together (see sql.pipeline)."""
        return nullcontext()

    # -- claims ------------------------------------------------------------------------

    @abstractmethod
    def claim(self, queue: str, limit: int, lease: Lease, now: datetime) -> Pending[list[Task]]:
        """Claim up to `limit` due tasks of `queue` under `lease`, best first, each with its
        `execution` and `claim_saw` (see durable.engine.waits)."""

    @abstractmethod
    def queue_head(self, queue: str, now: datetime) -> Pending[QueueHead]: ...

    def free_slots(self, queue: str) -> int | None:
        """How many more steps of `queue` may run now under its global cap (None: it has
        none). The claim that asks then holds the queue's gate until it commits, so no
        other claim of the queue counts meanwhile."""
        cap = durable_settings.queue_global_concurrency(queue)
        if cap is None:
            return None
        self.hold_gate(queue)
        running = (
            Task.objects.using(self.using).filter(queue=queue, status=TaskStatus.CLAIMED).count()
        )
        return max(cap - running, 0)

    def hold_gate(self, queue: str) -> None:  # noqa: B027
        """Take `queue`'s gate for the rest of the transaction (writers that take turns
        anyway, as SQLite's, need none)."""

    @abstractmethod
    def mark_running(self, pks: Iterable[int], now: datetime) -> None:
        """Mark pending or waiting executions among `pks` running (see claims)."""

    @abstractmethod
    def start_attempts(
        self, starts: Sequence[AttemptStart], worker_id: str, now: datetime
    ) -> None: ...

    @abstractmethod
    def renew_leases(
        self, leases: Sequence[tuple[int, uuid.UUID]], expires_at: datetime
    ) -> set[int]:
        """Extend the leases (task id, token) still held; the ids of their tasks."""

    # -- checkpoints -------------------------------------------------------------------

    @abstractmethod
    def lock_executions(self, pks: Iterable[int]) -> Pending[dict[int, WorkflowExecution]]:
        """Lock the executions `pks` in id order (every writer takes them in that order)."""

    @abstractmethod
    def take_tasks(
        self, leases: Sequence[tuple[int, uuid.UUID]], *, delete: bool
    ) -> Pending[dict[int, Task]]:
        """The tasks of these (id, lease token) pairs still held, by id: deleted or locked."""

    @abstractmethod
    def end_attempts(self, ends: Sequence[AttemptEnd], now: datetime) -> None: ...

    @abstractmethod
    def insert_tasks(self, tasks: Sequence[Task], now: datetime) -> Pending[None]:
        """Insert `tasks`; each has its id once the result is read."""

    # The execution columns `update_executions` writes; an execution with other changed
    # columns is saved by `save_changed` (outside a pipeline: the ORM reads row counts).
    batched_columns: frozenset[str] = frozenset()

    def update_executions(
        self, changes: Sequence[tuple[WorkflowExecution, set[str]]], now: datetime
    ) -> None:
        """Write executions whose changed columns are all `batched_columns`."""
        raise NotImplementedError

    @abstractmethod
    def end_executions(
        self, executions: Sequence[WorkflowExecution], now: datetime
    ) -> Pending[Freed]:
        """Drop what executions that reached a final status leave behind: their tasks, the
        attempts still running or parked (they can no longer commit, or never wake),
        pending inputs and concurrency slots, whose (scope, admitted) are returned."""

    @abstractmethod
    def start_executions(
        self,
        executions: Sequence[NewExecution],
        tasks: Sequence[NewTask],
        now: datetime,
        channel: str,
    ) -> None:
        """Insert `executions` but those whose idempotency key exists, and the `tasks` of
        those inserted; wake `channel`'s listeners for their due queues. Each execution
        inserted gets its `pk`, each task inserted its `id`."""

    @abstractmethod
    def parked_only(self, pks: Sequence[int]) -> Pending[set[int]]:
        """Which of the executions `pks` have tasks left, all parked on waits."""

    @abstractmethod
    def write_branches(self, rows: Sequence[BranchRow]) -> None:
        """Insert parked items; record the ops of finished branches (durable.store.branches)."""

    @abstractmethod
    def drop_branches(self, execution_pk: int, keys: Sequence[int]) -> None: ...

    def notify(self, channel: str, payloads: Sequence[str]) -> None:  # noqa: B027
        """Publish `payloads` on `channel` when the transaction commits (if the database
        has such a thing)."""


def save_changed(execution: WorkflowExecution, changed: set[str], using: str) -> None:
    """Save an execution's changed columns (attnames) with the ORM."""
    fields = [
        field.name
        for field in WorkflowExecution._meta.concrete_fields
        if field.attname in changed and not field.primary_key
    ]
    execution.save(using=using, update_fields=[*fields, "updated_at"])


def _gate_key(queue: str) -> int:
    """The advisory lock key of a queue's gate: a stable signed 64-bit hash of its name."""
    digest = hashlib.blake2b(f"durable:queue:{queue}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _interrupted(status: str) -> dict[str, Any]:
    return {
        "type": "Interrupted",
        "message": f"the execution ended ({status}) while the step ran or waited; "
        "its outcome was discarded",
    }


class PostgresBackend(Backend):
    def pipeline(self) -> Any:
        return sql.pipeline(self.using)

    def claim(self, queue: str, limit: int, lease: Lease, now: datetime) -> Pending[list[Task]]:
        cap = durable_settings.queue_global_concurrency(queue)
        if cap is not None:
            self.hold_gate(queue)
        return sql.claim_ready(queue, limit, lease, now, self.using, cap)

    def hold_gate(self, queue: str) -> None:
        sql.gate(_gate_key(queue), self.using)

    def queue_head(self, queue: str, now: datetime) -> Pending[QueueHead]:
        return sql.queue_head(queue, now, self.using)

    def mark_running(self, pks: Iterable[int], now: datetime) -> None:
        sql.mark_running(pks, now, self.using)

    def start_attempts(self, starts: Sequence[AttemptStart], worker_id: str, now: datetime) -> None:
        sql.start_attempts(starts, worker_id, now, self.using)

    def renew_leases(
        self, leases: Sequence[tuple[int, uuid.UUID]], expires_at: datetime
    ) -> set[int]:
        return sql.renew_leases(leases, expires_at, self.using).result()

    def lock_executions(self, pks: Iterable[int]) -> Pending[dict[int, WorkflowExecution]]:
        return sql.lock_executions(pks, self.using)

    def take_tasks(
        self, leases: Sequence[tuple[int, uuid.UUID]], *, delete: bool
    ) -> Pending[dict[int, Task]]:
        return sql.take_tasks(leases, self.using, delete=delete)

    def end_attempts(self, ends: Sequence[AttemptEnd], now: datetime) -> None:
        sql.end_attempts(ends, now, self.using)

    def insert_tasks(self, tasks: Sequence[Task], now: datetime) -> Pending[None]:
        return sql.insert_tasks(tasks, now, self.using)

    batched_columns = frozenset(sql.BATCH_EXECUTION_FIELDS)

    def update_executions(
        self, changes: Sequence[tuple[WorkflowExecution, set[str]]], now: datetime
    ) -> None:
        sql.update_executions(changes, now, self.using)

    def end_executions(
        self, executions: Sequence[WorkflowExecution], now: datetime
    ) -> Pending[Freed]:
        # Tasks first, in a statement of their own: every path that ends an execution
        # takes its locks in that order.
        sql.delete_execution_tasks([e.pk for e in executions], self.using)
        freed: list[Pending[Freed]] = []
        for status in sorted({str(e.status) for e in executions}):
            pks = [e.pk for e in executions if e.status == status]
            freed.append(sql.finish_cleanup(pks, now, _interrupted(status), self.using))
        return _Joined(freed)

    def start_executions(
        self,
        executions: Sequence[NewExecution],
        tasks: Sequence[NewTask],
        now: datetime,
        channel: str,
    ) -> None:
        sql.start_executions(executions, tasks, now, channel, self.using).result()

    def parked_only(self, pks: Sequence[int]) -> Pending[set[int]]:
        return sql.parked_only(pks, self.using)

    def write_branches(self, rows: Sequence[BranchRow]) -> None:
        sql.write_branches(rows, self.using)

    def drop_branches(self, execution_pk: int, keys: Sequence[int]) -> None:
        sql.drop_branches(execution_pk, keys, self.using)

    def notify(self, channel: str, payloads: Sequence[str]) -> None:
        sql.notify(channel, payloads, self.using)


class _Joined(Pending[Freed]):
    """The freed slots of several FINISH statements, read when asked for."""

    def __init__(self, parts: list[Pending[Freed]]) -> None:
        self.parts = parts

    def result(self) -> Freed:
        return [slot for part in self.parts for slot in part.result()]


class GenericBackend(Backend):
    """Any database Django supports; SQLite serialises writers, so claims need no SKIP
    LOCKED there."""

    def claim(self, queue: str, limit: int, lease: Lease, now: datetime) -> Pending[list[Task]]:
        tasks = Task.objects.using(self.using)
        free = self.free_slots(queue)
        if free is not None:
            limit = min(limit, free)
            if limit <= 0:
                return Done([])
        ids = list(
            tasks.filter(queue=queue, status__in=CLAIMABLE_TASK_STATUSES, run_at__lte=now)
            # A paused queue is skipped inside this one statement: an idle poll is one query.
            .exclude(
                queue__in=QueueState.objects.using(self.using).filter(paused=True).values("name")
            )
            .order_by("-priority", "run_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return Done([])
        tasks.filter(id__in=ids).update(**lease.columns(), claims=F("claims") + 1)
        claimed = list(
            tasks.filter(id__in=ids)
            .select_related("execution")
            .order_by("-priority", "run_at", "id")
        )
        look_around(claimed, self.using)
        return Done(claimed)

    def queue_head(self, queue: str, now: datetime) -> Pending[QueueHead]:
        paused = QueueState.objects.using(self.using).filter(name=queue, paused=True).exists()
        top = (
            Task.objects.using(self.using)
            .filter(queue=queue, status__in=CLAIMABLE_TASK_STATUSES, run_at__lte=now)
            .order_by("-priority")
            .values_list("priority", flat=True)
            .first()
        )
        return Done(QueueHead(paused, top))

    def mark_running(self, pks: Iterable[int], now: datetime) -> None:
        WorkflowExecution.objects.using(self.using).filter(
            pk__in=list(pks), status__in=_NOT_RUNNING
        ).update(status=ExecutionStatus.RUNNING, started_at=Coalesce("started_at", Value(now)))

    def start_attempts(self, starts: Sequence[AttemptStart], worker_id: str, now: datetime) -> None:
        rows = [
            StepExecution(
                **_key_fields(start.key),
                status=StepStatus.RUNNING,
                started_at=now,
                input=start.input,
                worker_id=worker_id,
                context_before=start.context_before,
            )
            for start in starts
        ]
        StepExecution.objects.using(self.using).bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["execution", "step", "scope_key", "kind", "attempt"],
            # A retaken attempt starts over: nothing of the run that died is kept on its row.
            update_fields=[
                "status",
                "started_at",
                "worker_id",
                "completed_at",
                "duration_ms",
                "error",
            ],
        )

    def renew_leases(
        self, leases: Sequence[tuple[int, uuid.UUID]], expires_at: datetime
    ) -> set[int]:
        held = Q()
        for task_id, token in leases:
            held |= Q(id=task_id, lease_token=token)
        tasks = Task.objects.using(self.using).filter(held)
        renewed = set(tasks.values_list("id", flat=True))
        tasks.filter(id__in=renewed).update(lease_expires_at=expires_at)
        return renewed

    def lock_executions(self, pks: Iterable[int]) -> Pending[dict[int, WorkflowExecution]]:
        rows = (
            WorkflowExecution.objects.using(self.using)
            .select_for_update()
            .filter(pk__in=sorted(pks))
            .defer(*sql.CHECKPOINT_SKIPS)
            .order_by("pk")
        )
        return Done({row.pk: row for row in rows})

    def take_tasks(
        self, leases: Sequence[tuple[int, uuid.UUID]], *, delete: bool
    ) -> Pending[dict[int, Task]]:
        held = Q()
        for task_id, token in leases:
            held |= Q(id=task_id, lease_token=token)
        tasks = {
            task.id: task
            for task in Task.objects.using(self.using).select_for_update().filter(held)
        }
        if delete and tasks:
            Task.objects.using(self.using).filter(id__in=list(tasks)).delete()
        return Done(tasks)

    def end_attempts(self, ends: Sequence[AttemptEnd], now: datetime) -> None:
        rows = StepExecution.objects.using(self.using)
        for end in ends:
            changes: dict[str, Any] = {
                "status": end.status,
                "output": end.output,
                "error": end.error,
                "completed_at": now,
                "duration_ms": end.duration_ms,
            }
            if end.logs is not None:
                changes["logs"] = end.logs
            rows.filter(**_key_fields(end.key)).update(**changes)

    def insert_tasks(self, tasks: Sequence[Task], now: datetime) -> Pending[None]:
        Task.objects.using(self.using).bulk_create(tasks)
        return Done(None)

    def end_executions(
        self, executions: Sequence[WorkflowExecution], now: datetime
    ) -> Pending[Freed]:
        pks = [e.pk for e in executions]
        Task.objects.using(self.using).filter(execution_id__in=pks).delete()
        for status in sorted({str(e.status) for e in executions}):
            ended = [e.pk for e in executions if e.status == status]
            StepExecution.objects.using(self.using).filter(
                execution_id__in=ended, status__in=_UNFINISHED_STEPS
            ).update(status=StepStatus.FAILED, completed_at=now, error=_interrupted(status))
        PendingInput.objects.using(self.using).filter(
            execution_id__in=pks, status=PendingInput.Status.PENDING
        ).update(status=PendingInput.Status.CANCELLED, completed_at=now)
        FanoutBranch.objects.using(self.using).filter(execution_id__in=pks).delete()
        slots = FlowSlot.objects.using(self.using).filter(execution_id__in=pks)
        freed = [(slot.scope, slot.admitted) for slot in slots]
        slots.delete()
        return Done(freed)

    def start_executions(
        self,
        executions: Sequence[NewExecution],
        tasks: Sequence[NewTask],
        now: datetime,
        channel: str,
    ) -> None:
        keys = [e.idempotency_key for e in executions if e.idempotency_key is not None]
        taken = set(
            WorkflowExecution.objects.using(self.using)
            .filter(idempotency_key__in=keys)
            .values_list("idempotency_key", flat=True)
        )
        rows = {
            e.workflow_id: WorkflowExecution(
                workflow_id=e.workflow_id,
                workflow_module=e.module,
                workflow_name=e.name,
                status=ExecutionStatus.PENDING,
                queue=e.queue,
                priority=e.priority,
                input=e.input,
                context=e.context,
                fanouts=e.fanouts,
                current_step=e.current_step,
                scheduled_at=e.scheduled_at,
                idempotency_key=e.idempotency_key,
                deadline_at=e.deadline_at,
                parent_id=e.parent_id,
                definition_version=e.version,
                definition_fingerprint=e.fingerprint,
                trace_context=e.trace_context,
            )
            for e in executions
            if e.idempotency_key is None or e.idempotency_key not in taken
        }
        WorkflowExecution.objects.using(self.using).bulk_create(rows.values())
        for execution in executions:
            row = rows.get(execution.workflow_id)
            execution.pk = row.pk if row is not None else None
        kept = [t for t in tasks if t.workflow_id in rows]
        inserted = Task.objects.using(self.using).bulk_create(
            t.as_task(rows[t.workflow_id]) for t in kept
        )
        for new, made in zip(kept, inserted, strict=True):
            new.id = made.id

    def parked_only(self, pks: Sequence[int]) -> Pending[set[int]]:
        statuses: dict[int, set[str]] = {}
        rows = Task.objects.using(self.using).filter(execution_id__in=list(pks))
        for execution_id, status in rows.values_list("execution_id", "status").distinct():
            statuses.setdefault(execution_id, set()).add(status)
        return Done({pk for pk, found in statuses.items() if found == {TaskStatus.WAITING}})

    def write_branches(self, rows: Sequence[BranchRow]) -> None:
        FanoutBranch.objects.using(self.using).bulk_create(
            [
                FanoutBranch(execution_id=e, fanout=key, index=index, item=item, ops=ops)
                for e, key, index, item, ops in rows
            ],
            update_conflicts=True,
            unique_fields=["execution", "fanout", "index"],
            update_fields=["ops"],
        )

    def drop_branches(self, execution_pk: int, keys: Sequence[int]) -> None:
        FanoutBranch.objects.using(self.using).filter(
            execution_id=execution_pk, fanout__in=list(keys)
        ).delete()


def look_around(tasks: Sequence[Task], using: str) -> None:
    """Set `claim_saw` of claimed tasks with queries of their own (the PostgreSQL claim
    statement reads it along): whether their executions have open events or children."""
    pks = {task.execution_id for task in tasks}
    if not pks:
        return
    with_events = set(
        WorkflowEvent.objects.using(using)
        .filter(execution_id__in=pks, consumed_at__isnull=True)
        .values_list("execution_id", flat=True)
    )
    with_children = set(
        WorkflowExecution.objects.using(using)
        .filter(parent_id__in=pks)
        .values_list("parent_id", flat=True)
    )
    for task in tasks:
        task.claim_saw = (task.execution_id in with_events, task.execution_id in with_children)


def _key_fields(key: AttemptKey) -> dict[str, Any]:
    return {
        "execution_id": key.execution_id,
        "step": key.step,
        "scope_key": key.scope_key,
        "kind": key.kind,
        "attempt": key.attempt,
    }


_backends: dict[str, Backend] = {}


def backend(using: str) -> Backend:
    """The backend of database alias `using` (made once)."""
    found = _backends.get(using)
    if found is None:
        vendor = connections[using].vendor
        found = PostgresBackend(using) if vendor == "postgresql" else GenericBackend(using)
        _backends[using] = found
    return found


@receiver(setting_changed)
def _forget_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "DATABASES":
        _backends.clear()
