"""Claiming ready tasks under a lease, keeping leases alive, and retaking expired ones.

A claim locks ready rows with `FOR UPDATE SKIP LOCKED` (on PostgreSQL; SQLite serialises
writers instead), stamps them with a fresh lease token and a lease expiry, and records the
attempt as running. Only the holder of the current token can checkpoint a task.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from durable.flow.ops import apply_ops, copy_json
from durable.flow.token import Token
from durable.flow.waits import WaitSpec
from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    ExecutionStatus,
    QueueState,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowEvent,
    WorkflowExecution,
)
from durable.signals import lifecycle_event
from durable.store import hot, outbox
from durable.store.hot import Lease as _Lease
from durable.store.outbox import ReadyTask
from durable.store.records import ClaimedTask

logger = logging.getLogger("durable.store")


def claim_tasks(
    queue: str, limit: int, *, worker_id: str, lease_seconds: float, using: str
) -> list[ClaimedTask]:
    """Claim up to `limit` due tasks of `queue`, highest priority first, then oldest."""
    if limit <= 0:
        return []
    with transaction.atomic(using=using):
        # Read the clock once the transaction holds its locks (SQLite may wait seconds for
        # its write lock): a lease counted from before the wait could expire at once.
        now = timezone.now()
        lease = _Lease(uuid.uuid4(), worker_id, now + timedelta(seconds=lease_seconds), queue)
        return claim_in_transaction(limit, lease, now, using)


def claim_in_transaction(limit: int, lease: _Lease, now: datetime, using: str) -> list[ClaimedTask]:
    """Inside the caller's transaction: claim up to `limit` due tasks of `lease.queue` under
    `lease`, and `start_claims` them."""
    if hot.supported(using):
        tasks = hot.claim_ready(lease.queue, limit, lease, now, using).result()
    else:
        tasks = _claim_generic(lease.queue, limit, lease, now, using)
        executions = _claim_executions({t.execution_id for t in tasks}, using)
        for task in tasks:
            task.execution = executions[task.execution_id]
        _look_around(tasks, using)
    return start_claims(tasks, lease, now, using)


def _look_around(tasks: Sequence[Task], using: str) -> None:
    """Set `claim_saw` where the claim statement does not (hot.CLAIM_SQL does)."""
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


def start_claims(
    tasks: Sequence[Task], lease: _Lease, now: datetime, using: str
) -> list[ClaimedTask]:
    """For tasks just claimed under `lease` (each with its `execution`): record their
    attempts as running, mark their executions running and announce the starts (at
    commit)."""
    if not tasks:
        return []
    _record_attempts_started(tasks, lease.worker_id, now, using)
    claimed = [_claimed(task, lease.token, now) for task in tasks]
    starting = {t.execution_id for t in tasks if t.execution.status in _NOT_RUNNING}
    if starting:
        _mark_running(starting, now, using)
    _announce_starts(tasks, claimed, lease.worker_id, using)
    return claimed


_NOT_RUNNING = (ExecutionStatus.PENDING, ExecutionStatus.WAITING)


@dataclass(frozen=True)
class Chain:
    """A worker's leave to claim, inside a checkpoint, the next step it queues (on the same
    queue), and run it on the same thread: no claim transaction, no wake-up."""

    worker_id: str
    lease_seconds: float
    # Asked again at the checkpoint (a worker told to stop meanwhile claims nothing more).
    allowed: Callable[[], bool] = lambda: True


def chain_lease(
    chain: Chain, queue: str, priority: int, now: datetime, using: str
) -> _Lease | None:
    """The lease a checkpoint inserts its next task under, unless it must yield to the queue
    (paused, or higher-priority work is due)."""
    if hot.yields_to_queue(queue, priority, now, using):
        return None
    return new_chain_lease(chain, queue, now)


def new_chain_lease(chain: Chain, queue: str, now: datetime) -> _Lease:
    """A fresh lease for a task a checkpoint inserts claimed on `queue`."""
    expires_at = now + timedelta(seconds=chain.lease_seconds)
    return _Lease(uuid.uuid4(), chain.worker_id, expires_at, queue)


def start_chained(
    chained: Sequence[tuple[Task, _Lease]], now: datetime, using: str
) -> list[ClaimedTask]:
    """Record the attempts of tasks a checkpoint inserted claimed (each `execution` is the
    locked, updated row) and announce their start; the checkpoint's commit carries both."""
    by_worker: dict[str, list[Task]] = {}
    for task, lease in chained:
        by_worker.setdefault(lease.worker_id, []).append(task)
    for worker_id, tasks in by_worker.items():
        _record_attempts_started(tasks, worker_id, now, using)
    claims = []
    for task, lease in chained:
        claim = _claimed(task, lease.token, now)
        step_event("step_started", claim, task, using, worker_id=lease.worker_id)
        claims.append(claim)
    return claims


def _claim_executions(pks: Iterable[int], using: str) -> dict[int, WorkflowExecution]:
    """What a claim reads of its executions, where the claim statement does not return them
    (hot.CLAIM_SQL does)."""
    rows = WorkflowExecution.objects.using(using).filter(pk__in=list(pks))
    return {execution.pk: execution for execution in rows.only(*hot.CLAIM_EXECUTION_FIELDS)}


def _claim_generic(queue: str, limit: int, lease: _Lease, now: datetime, using: str) -> list[Task]:
    """The claim for databases without SKIP LOCKED (SQLite): its writers are serialised."""
    ids = list(
        Task.objects.using(using)
        .filter(queue=queue, status__in=CLAIMABLE_TASK_STATUSES, run_at__lte=now)
        # A paused queue is skipped inside this one statement: an idle poll is one query.
        .exclude(queue__in=QueueState.objects.using(using).filter(paused=True).values("name"))
        .order_by("-priority", "run_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    Task.objects.using(using).filter(id__in=ids).update(
        status=TaskStatus.CLAIMED,
        lease_token=lease.token,
        leased_by=lease.worker_id,
        lease_expires_at=lease.expires_at,
        claims=F("claims") + 1,
    )
    return list(Task.objects.using(using).filter(id__in=ids).order_by("-priority", "run_at", "id"))


@dataclass
class IdClaim:
    """What `claim_task_ids` did with the task ids a broker delivered."""

    claimed: list[ClaimedTask] = field(default_factory=list)
    # Claimable tasks that are not due yet (a retry, a re-parked wait): id -> run_at.
    not_due: dict[int, datetime] = field(default_factory=dict)
    # The queue is paused: nothing was claimed, the messages belong back in the broker.
    paused: bool = False


def claim_task_ids(
    queue: str, task_ids: Sequence[int], *, worker_id: str, lease_seconds: float, using: str
) -> IdClaim:
    """Claim exactly the due, unclaimed tasks among `task_ids` (ids a broker delivered).

    Ids of tasks that are claimed, finished or gone are simply not claimed: a broker
    message is only a hint, the task row decides.
    """
    result = IdClaim()
    if not task_ids:
        return result
    lease_token = uuid.uuid4()
    with transaction.atomic(using=using):
        if QueueState.objects.using(using).filter(name=queue, paused=True).exists():
            result.paused = True
            return result
        now = timezone.now()
        candidates = Task.objects.using(using).filter(
            id__in=list(task_ids), queue=queue, status__in=CLAIMABLE_TASK_STATUSES
        )
        if _skip_locked(using):
            candidates = candidates.select_for_update(skip_locked=True)
        rows = list(candidates.values_list("id", "run_at"))
        result.not_due = {task_id: run_at for task_id, run_at in rows if run_at > now}
        ids = [task_id for task_id, run_at in rows if run_at <= now]
        if not ids:
            return result
        Task.objects.using(using).filter(id__in=ids).update(
            status=TaskStatus.CLAIMED,
            lease_token=lease_token,
            leased_by=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            claims=F("claims") + 1,
        )
        tasks = list(
            Task.objects.using(using)
            .filter(id__in=ids)
            .select_related("execution")
            .order_by("-priority", "run_at", "id")
        )
        _look_around(tasks, using)
        _record_attempts_started(tasks, worker_id, now, using)
    result.claimed = [_claimed(task, lease_token, now) for task in tasks]
    try:
        _mark_running({c.execution_pk for c in result.claimed}, now, using)
        _announce_starts(tasks, result.claimed, worker_id, using)
    except DatabaseError as exc:
        logger.warning("claimed %d task(s) but could not mark them started: %s", len(tasks), exc)
    return result


def paused_queues(queues: Iterable[str], *, using: str) -> set[str]:
    return set(
        QueueState.objects.using(using)
        .filter(name__in=list(queues), paused=True)
        .values_list("name", flat=True)
    )


def unclaimed_due_tasks(
    queue: str, *, due_before: datetime, limit: int, using: str
) -> list[ReadyTask]:
    """Ready tasks of `queue` due before `due_before` and still unclaimed, oldest first
    (the reconciler re-publishes those a broker lost)."""
    rows = (
        Task.objects.using(using)
        .filter(queue=queue, status__in=CLAIMABLE_TASK_STATUSES, run_at__lte=due_before)
        .order_by("run_at", "id")
        .values_list("id", "priority", "run_at")[:limit]
    )
    return [ReadyTask(task_id, queue, priority, run_at) for task_id, priority, run_at in rows]


def _announce_starts(
    tasks: Sequence[Task], claimed: Sequence[ClaimedTask], worker_id: str, using: str
) -> None:
    started: set[int] = set()
    for task, claim in zip(tasks, claimed, strict=True):
        execution = task.execution
        if execution.status == ExecutionStatus.PENDING and execution.pk not in started:
            started.add(execution.pk)
            outbox.event(
                lifecycle_event("workflow_started", claim.workflow_id, claim.workflow_name),
                using,
            )
        step_event("step_started", claim, task, using, worker_id=worker_id)


def step_event(name: str, claim: ClaimedTask, task: Task, using: str, **data: Any) -> None:
    """Send a step lifecycle event for `claim` once the current transaction commits."""
    outbox.event(
        lifecycle_event(
            name,
            claim.workflow_id,
            claim.workflow_name,
            step=claim.step,
            kind=claim.kind,
            scope_key=attempt_scope_key(task),
            attempt=claim.attempt,
            **data,
        ),
        using,
    )


def _record_attempts_started(
    tasks: Sequence[Task], worker_id: str, now: datetime, using: str
) -> None:
    """Upsert a `running` row per attempt; a retaken attempt reuses the row it left behind."""
    if hot.supported(using):
        attempts = [
            hot.AttemptStart(
                execution_id=task.execution_id,
                step=task.step,
                scope_key=attempt_scope_key(task),
                kind=attempt_kind(task),
                attempt=task.attempt,
                input=task.token.get("item"),
                context_before=restart_snapshot(task),
            )
            for task in tasks
        ]
        hot.start_attempts(attempts, worker_id, now, using)
        return
    rows = [
        StepExecution(
            execution_id=task.execution_id,
            step=task.step,
            scope_key=attempt_scope_key(task),
            kind=attempt_kind(task),
            attempt=task.attempt,
            status=StepStatus.RUNNING,
            started_at=now,
            input=task.token.get("item"),
            worker_id=worker_id,
            context_before=restart_snapshot(task),
        )
        for task in tasks
    ]
    StepExecution.objects.using(using).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["execution", "step", "scope_key", "kind", "attempt"],
        # A retaken attempt starts over: nothing of the run that died is kept on its row.
        update_fields=["status", "started_at", "worker_id", "completed_at", "duration_ms", "error"],
    )


def restart_snapshot(task: Task) -> Any:
    """The root context to keep on a new attempt row for `durable.retry(from_step=...)`:
    only on a run's first attempt of a step in its first scope (first item, first loop
    iteration), so one copy per step of the definition per run, never one per item."""
    if task.kind != "step" or task.attempt != task.execution.attempt_floor + 1:
        return None
    token = task.token
    if any(index for _, index in token.get("frames", ())) or any(
        count != 1 for count in token.get("loops", {}).values()
    ):
        return None
    return task.execution.context


def attempt_scope_key(task: Task) -> str:
    """The `scope_key` of the StepExecution rows that record `task`'s attempts."""
    if task.kind == "compensate":
        return str(task.token.get("scope_key", ""))
    return Token.from_json(task.token).scope_key()


def attempt_rows(task: Task, attempt: int, using: str) -> QuerySet[StepExecution]:
    """The StepExecution row of `task`'s attempt, keyed exactly as the claim inserted it."""
    return StepExecution.objects.using(using).filter(
        execution_id=task.execution_id,
        step=task.step,
        scope_key=attempt_scope_key(task),
        kind=attempt_kind(task),
        attempt=attempt,
    )


def attempt_kind(task: Task) -> str:
    return "compensate" if task.kind == "compensate" else "step"


def _claimed(task: Task, lease_token: uuid.UUID, now: datetime) -> ClaimedTask:
    execution = task.execution
    token = Token.from_json(task.token)
    if task.kind == "step" and not token.at_root:
        fanout = execution.fanouts[token.frames[-1].fanout]
        view = apply_ops(copy_json(fanout["base"]), token.ops)
    else:
        view = copy_json(execution.context)
    return ClaimedTask(
        task_id=task.id,
        lease_token=lease_token,
        execution_pk=execution.pk,
        workflow_id=execution.workflow_id,
        workflow_name=execution.workflow_name,
        kind=task.kind,
        step=task.step,
        token=token,
        attempt=task.attempt,
        queue=task.queue,
        input=execution.input,
        context=view,
        deadline_at=execution.deadline_at,
        claimed_at=now,
        expiries=task.expiries,
        recorded_waits=list(task.token.get("waits", [])),
        pending_wait=WaitSpec.from_json(task.wait) if task.wait else None,
        fingerprint=execution.definition_fingerprint,
        open_events=task.claim_saw[0],
        has_children=task.claim_saw[1],
    )


def _skip_locked(using: str) -> bool:
    return bool(connections[using].features.has_select_for_update_skip_locked)


def _mark_running(execution_pks: Iterable[int], now: datetime, using: str) -> None:
    """Mark pending (or waiting) executions running: a pending one starts now, a waiting one
    keeps its start. On PostgreSQL rows another transaction holds are skipped: a claim must
    never wait on an execution row (a cancel holding one waits on our task rows); such an
    execution is settled `running` by its step's checkpoint instead."""
    if hot.supported(using):
        hot.mark_running(execution_pks, now, using)
        return
    WorkflowExecution.objects.using(using).filter(
        pk__in=list(execution_pks), status__in=_NOT_RUNNING
    ).update(status=ExecutionStatus.RUNNING, started_at=Coalesce("started_at", Value(now)))


def heartbeat(claims: Iterable[ClaimedTask], *, lease_seconds: float, using: str) -> int:
    """Extend the leases still held; returns how many were still ours."""
    claims = list(claims)
    if not claims:
        return 0
    held = Q()
    for claim in claims:
        held |= Q(id=claim.task_id, lease_token=claim.lease_token)
    with transaction.atomic(using=using):
        # The clock is read once the write lock is ours (SQLite may wait for it).
        expires_at = timezone.now() + timedelta(seconds=lease_seconds)
        return Task.objects.using(using).filter(held).update(lease_expires_at=expires_at)


def release(claim: ClaimedTask, *, using: str) -> bool:
    """Give an unfinished claim back for another worker, without counting an attempt."""
    with transaction.atomic(using=using):
        task = (
            Task.objects.using(using)
            .filter(id=claim.task_id, lease_token=claim.lease_token)
            .first()
        )
        if task is None:
            return False
        _unclaim([task], using)
    return True


def reap_expired_leases(*, using: str) -> int:
    """Make tasks whose worker stopped heartbeating ready again (their attempt re-runs)."""
    with transaction.atomic(using=using):
        expired = list(
            Task.objects.using(using)
            .select_for_update(skip_locked=_skip_locked(using))
            .filter(status=TaskStatus.CLAIMED, lease_expires_at__lt=timezone.now())
        )
        _unclaim(expired, using, expired_lease=True)
    return len(expired)


def _unclaim(tasks: Sequence[Task], using: str, *, expired_lease: bool = False) -> None:
    """Make claimed tasks claimable again; their attempt rows go back to `pending`, so no
    step shows as running on a worker that let go of it."""
    if not tasks:
        return
    Task.objects.using(using).filter(id__in=[t.id for t in tasks]).update(
        status=TaskStatus.READY,
        lease_token=None,
        leased_by="",
        lease_expires_at=None,
        expiries=F("expiries") + int(expired_lease),
    )
    for task in tasks:
        attempt_rows(task, task.attempt, using).filter(status=StepStatus.RUNNING).update(
            status=StepStatus.PENDING, worker_id=""
        )
    outbox.ready(tasks, using)


def next_due_at(queues: Sequence[str], *, using: str) -> datetime | None:
    """When the earliest not-yet-due task of `queues` (a retry, a sleep) becomes due."""
    now = timezone.now()
    firsts = [
        Task.objects.using(using)
        .filter(queue=queue, status__in=CLAIMABLE_TASK_STATUSES, run_at__gt=now)
        .order_by("run_at")
        .values_list("run_at", flat=True)
        .first()
        for queue in queues
    ]
    due = [at for at in firsts if at is not None]
    return min(due) if due else None
