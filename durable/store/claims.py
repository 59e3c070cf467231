"""Claiming ready tasks under a lease, keeping leases alive, and retaking expired ones.

A claim locks ready rows with `FOR UPDATE SKIP LOCKED` (on PostgreSQL; SQLite serialises
writers instead), stamps them with a fresh lease (durable.store.rows.Lease), and records
the attempt as running. Only the holder of the current token can checkpoint a task.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from durable.flow.ops import apply_ops, copy_json
from durable.flow.token import Token, scope_key_of
from durable.flow.waits import WaitSpec
from durable.models import (
    CLAIMABLE_TASK_STATUSES,
    ExecutionStatus,
    QueueState,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
)
from durable.signals import lifecycle_event
from durable.store import outbox, workers
from durable.store.backend import backend, look_around
from durable.store.outbox import ReadyTask
from durable.store.records import ClaimedTask
from durable.store.rows import UNLEASED, AttemptKey, AttemptStart, Lease

logger = logging.getLogger("durable.store")


# The holders of a task's expired leases that are remembered (newest).
LOST_BY_KEPT = 50

# A task a broker delivered while its queue's global cap was reached goes back to the
# broker, due again this many seconds later.
GATE_RETRY_SECONDS = 1.0


def new_lease(worker_id: str, queue: str, now: datetime, lease_seconds: float) -> Lease:
    return Lease(uuid.uuid4(), worker_id, now + timedelta(seconds=lease_seconds), queue)


def claim_tasks(
    queue: str, limit: int, *, worker_id: str, lease_seconds: float, using: str
) -> list[ClaimedTask]:
    """Claim up to `limit` due tasks of `queue`, highest priority first, then oldest."""
    if limit <= 0:
        return []
    with transaction.atomic(using=using), outbox.collecting(using):
        # Read the clock once the transaction holds its locks (SQLite may wait seconds for
        # its write lock): a lease counted from before the wait could expire at once.
        now = timezone.now()
        lease = new_lease(worker_id, queue, now, lease_seconds)
        tasks = backend(using).claim(queue, limit, lease, now).result()
        return start_claims(tasks, lease, now, using)


def start_claims(
    tasks: Sequence[Task], lease: Lease, now: datetime, using: str
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
        # Rows another transaction holds are skipped (PostgreSQL): a claim must never wait
        # on an execution row (a cancel holding one waits on our task rows); such an
        # execution is settled `running` by its step's checkpoint instead.
        backend(using).mark_running(starting, now)
    _announce_starts(tasks, claimed, lease.worker_id, using)
    return claimed


_NOT_RUNNING = (ExecutionStatus.PENDING, ExecutionStatus.WAITING)


@dataclass(frozen=True)
class Chain:
    """A worker's leave to claim, inside a checkpoint, the next step it queues (on the same
    queue), and run it on the same coroutine: no claim transaction, no wake-up."""

    worker_id: str
    lease_seconds: float
    # Asked again at the checkpoint (a worker told to stop meanwhile claims nothing more).
    allowed: Callable[[], bool] = lambda: True


def new_chain_lease(chain: Chain, queue: str, now: datetime) -> Lease:
    """A fresh lease for a task a checkpoint inserts claimed on `queue`."""
    return new_lease(chain.worker_id, queue, now, chain.lease_seconds)


def start_chained(
    chained: Sequence[tuple[Task, Lease]], now: datetime, using: str
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
    db = backend(using)
    with transaction.atomic(using=using):
        if QueueState.objects.using(using).filter(name=queue, paused=True).exists():
            result.paused = True
            return result
        now = timezone.now()
        lease = new_lease(worker_id, queue, now, lease_seconds)
        candidates = Task.objects.using(using).filter(
            id__in=list(task_ids), queue=queue, status__in=CLAIMABLE_TASK_STATUSES
        )
        if db.skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        rows = list(candidates.order_by("-priority", "run_at", "id").values_list("id", "run_at"))
        result.not_due = {task_id: run_at for task_id, run_at in rows if run_at > now}
        ids = [task_id for task_id, run_at in rows if run_at <= now]
        free = db.free_slots(queue)
        if free is not None and len(ids) > free:
            # Over the queue's global cap: back to the broker, due again in a moment.
            later = now + timedelta(seconds=GATE_RETRY_SECONDS)
            result.not_due.update(dict.fromkeys(ids[free:], later))
            ids = ids[:free]
        if not ids:
            return result
        Task.objects.using(using).filter(id__in=ids).update(
            **lease.columns(), claims=F("claims") + 1
        )
        tasks = list(
            Task.objects.using(using)
            .filter(id__in=ids)
            .select_related("execution")
            .order_by("-priority", "run_at", "id")
        )
        look_around(tasks, using)
        _record_attempts_started(tasks, worker_id, now, using)
    result.claimed = [_claimed(task, lease.token, now) for task in tasks]
    try:
        with transaction.atomic(using=using), outbox.collecting(using):
            db.mark_running({c.execution_pk for c in result.claimed}, now)
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
    starts = [
        AttemptStart(
            attempt_key(task, task.attempt), task.token.get("item"), restart_snapshot(task)
        )
        for task in tasks
    ]
    backend(using).start_attempts(starts, worker_id, now)


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
    return scope_key_of(task.token)


def attempt_kind(task: Task) -> str:
    return "compensate" if task.kind == "compensate" else "step"


def attempt_key(task: Task, attempt: int) -> AttemptKey:
    """Which StepExecution row records `task`'s attempt `attempt`."""
    return AttemptKey(
        task.execution_id, task.step, attempt_scope_key(task), attempt_kind(task), attempt
    )


def attempt_rows(task: Task, attempt: int, using: str) -> QuerySet[StepExecution]:
    """The StepExecution row of `task`'s attempt, keyed exactly as the claim inserted it."""
    key = attempt_key(task, attempt)
    return StepExecution.objects.using(using).filter(
        execution_id=key.execution_id,
        step=key.step,
        scope_key=key.scope_key,
        kind=key.kind,
        attempt=key.attempt,
    )


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
        lost_by=list(task.lost_by or []),
        recorded_waits=list(task.token.get("waits", [])),
        pending_wait=WaitSpec.from_json(task.wait) if task.wait else None,
        fingerprint=execution.definition_fingerprint,
        open_events=task.claim_saw[0],
        has_children=task.claim_saw[1],
        parent_pk=execution.parent_id,
    )


def heartbeat(
    claims: Iterable[ClaimedTask],
    *,
    lease_seconds: float,
    using: str,
    worker_id: str | None = None,
) -> int:
    """Extend the leases still held (and mark `worker_id` seen); how many were ours."""
    leases = [(claim.task_id, claim.lease_token) for claim in claims]
    if not leases and worker_id is None:
        return 0
    with transaction.atomic(using=using):
        # The clock is read once the write lock is ours (SQLite may wait for it).
        expires_at = timezone.now() + timedelta(seconds=lease_seconds)
        if worker_id is not None:
            workers.seen(worker_id, using=using)
        return backend(using).renew_leases(leases, expires_at) if leases else 0


def release(claim: ClaimedTask, *, using: str, until: datetime | None = None) -> bool:
    """Give an unfinished claim back for another worker, without counting an attempt;
    claimable again at once, or from `until`."""
    with transaction.atomic(using=using):
        task = (
            Task.objects.using(using)
            .filter(id=claim.task_id, lease_token=claim.lease_token)
            .first()
        )
        if task is None:
            return False
        _unclaim([task], using, run_at=until)
    return True


def reap_expired_leases(*, using: str) -> int:
    """Make tasks whose worker stopped heartbeating ready again (their attempt re-runs)."""
    with transaction.atomic(using=using):
        expired = list(
            Task.objects.using(using)
            .select_for_update(skip_locked=backend(using).skip_locked)
            .filter(status=TaskStatus.CLAIMED, lease_expires_at__lt=timezone.now())
        )
        _unclaim(expired, using, expired_lease=True)
    return len(expired)


def _unclaim(
    tasks: Sequence[Task],
    using: str,
    *,
    expired_lease: bool = False,
    run_at: datetime | None = None,
) -> None:
    """Make claimed tasks claimable again (from `run_at` when given); their attempt rows go
    back to `pending`, so no step shows as running on a worker that let go of it."""
    if not tasks:
        return
    due: dict[str, Any] = {}
    if run_at is not None:
        due["run_at"] = run_at
        for task in tasks:
            task.run_at = run_at  # the publisher delays what it sends (outbox.ready)
    Task.objects.using(using).filter(id__in=[t.id for t in tasks]).update(
        status=TaskStatus.READY, **UNLEASED, **due, expiries=F("expiries") + int(expired_lease)
    )
    if expired_lease:
        # Who held each lease: whether they are gone is decided when it matters (prepare).
        for task in tasks:
            task.lost_by = [*(task.lost_by or []), task.leased_by][-LOST_BY_KEPT:]
        Task.objects.using(using).bulk_update(tasks, ["lost_by"])
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
