"""Checkpoints: recording a step attempt's outcome and moving the execution on, atomically.

Each checkpoint is one transaction that locks the execution row, proves the lease is
still ours by deleting (or rescheduling) our task row under our lease token, records the
attempt, applies the step's context ops and queues what comes next. A worker whose lease
was taken over finds no row to delete and commits nothing (`LeaseLost`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.exceptions import LeaseLost
from durable.flow.ops import Op
from durable.flow.result import take_result
from durable.flow.router import FlowError, FlowState, Router
from durable.flow.waits import WaitSpec
from durable.models import (
    ExecutionStatus,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.signals import lifecycle_event
from durable.store import hot, outbox
from durable.store.claims import Chain, attempt_rows, chain_lease, start_chained, step_event
from durable.store.deploys import check_checkpoint
from durable.store.executions import (
    ACTIVE,
    Deferred,
    apply_advance,
    enqueue_compensation,
    fail_execution,
    finish,
    loaded_values,
    lock_execution,
    mark_step_rows,
    save_changed,
    settle_status,
)
from durable.store.hot import Lease
from durable.store.livelogs import resumes_attempt
from durable.store.records import ClaimedTask, WaitEffects, error_record
from durable.store.waits import apply_wait_effects, suspend_step

logger = logging.getLogger("durable.store")


def _take_task(claim: ClaimedTask, using: str, *, delete: bool = False) -> Task:
    """Our task row, locked (or deleted, `delete`), if the lease is still ours."""
    if delete and hot.supported(using):
        task = hot.delete_task(claim.task_id, claim.lease_token, using)
    else:
        task = (
            Task.objects.using(using)
            .select_for_update()
            .filter(id=claim.task_id, lease_token=claim.lease_token)
            .first()
        )
        if task is not None and delete:
            task.delete()
    if task is None:
        raise LeaseLost(
            f"{claim.kind} {claim.step!r} of {claim.workflow_id} (attempt {claim.attempt}): "
            "the lease was lost or the execution ended; this outcome is discarded"
        )
    return task


def _timing(finished_at: datetime, duration_ms: int) -> dict[str, Any]:
    return {"completed_at": finished_at, "duration_ms": duration_ms}


def _logs(
    claim: ClaimedTask, task: Task, logs: list[dict[str, Any]] | None, using: str
) -> dict[str, Any]:
    """The `logs` update for an attempt row: a run resumed after a wait appends to what the
    attempt's earlier runs logged."""
    if logs is None:
        return {}
    if resumes_attempt(claim):
        earlier = attempt_rows(task, claim.attempt, using).values_list("logs", flat=True).first()
        return {"logs": [*(earlier or []), *logs]}
    return {"logs": logs}


def complete_step(
    claim: ClaimedTask,
    definition: Definition,
    *,
    ops: list[Op],
    output: Any,
    duration_ms: int,
    using: str,
    logs: list[dict[str, Any]] | None = None,
    waits: WaitEffects | None = None,
    chain: Chain | None = None,
) -> ClaimedTask | None:
    """Record a successful attempt and advance the execution. Raises LeaseLost.

    With a `chain`, the next step queued on the claim's queue is claimed in this same
    transaction and returned, for the caller to run next.
    """
    now = timezone.now()
    with transaction.atomic(using=using):
        execution = lock_execution(claim.workflow_id, using)
        loaded = loaded_values(execution)
        # A deploy that changed the structure may park the execution, this task with it, so
        # the task is deleted only once the position check passed.
        restructured = execution.definition_fingerprint != fingerprint(definition)
        task = _take_task(claim, using, delete=not restructured)
        if restructured:
            if not check_checkpoint(claim, definition, execution, using=using):
                return None  # parked: a deploy removed where this step's token goes next
            task.delete()
        apply_wait_effects(task, waits, using)
        attempt_rows(task, claim.attempt, using).update(
            status=StepStatus.COMPLETED,
            output=output,
            **_timing(now, duration_ms),
            **_logs(claim, task, logs, using),
        )
        step_event("step_completed", claim, task, using, duration_ms=duration_ms)
        if execution.status not in ACTIVE:
            return None
        moved = move_on(
            claim,
            definition,
            execution,
            ops=ops,
            output=output,
            using=using,
            lease=_chain_leases(chain, now, using),
        )
        if not moved.saved:
            save_changed(execution, loaded, using)
        if moved.chained is None or moved.lease is None:
            return None
        return start_chained([(moved.chained, moved.lease)], now, using)[0]


def _chain_leases(
    chain: Chain | None, now: datetime, using: str
) -> Callable[[str, int], Lease | None] | None:
    if chain is None:
        return None

    def lease(queue: str, priority: int) -> Lease | None:
        return chain_lease(chain, queue, priority, now, using)

    return lease


@dataclass
class Moved:
    """What `move_on` did to the (locked) execution."""

    chained: Task | None = None  # the next task, inserted claimed under `lease`
    lease: Lease | None = None
    saved: bool = False  # the execution was saved already (the router failed it)


def move_on(
    claim: ClaimedTask,
    definition: Definition,
    execution: WorkflowExecution,
    *,
    ops: list[Op],
    output: Any,
    using: str,
    lease: Callable[[str, int], Lease | None] | None = None,
    deferred: Deferred | None = None,
) -> Moved:
    """Route the execution on from a completed step: apply its ops, queue what comes next
    (with `deferred`, see `apply_advance`), finish it at the end, settle its
    status. The caller saves the execution unless `saved`.

    `lease(queue, priority)` gives the lease to insert the next step on that queue claimed
    under (None: queue it for any worker)."""
    if execution.started_at is None:
        # Its claim could not mark it running (a transaction held the row): it is now.
        execution.started_at = claim.claimed_at
    ops, result = take_result(ops)
    if result is not None:
        execution.result, execution.result_explicit = result[1], True
    state = FlowState(execution.context, execution.fanouts, execution.workflow_id, execution.input)
    try:
        advance = Router(definition, state).step_done(claim.token, ops, output)
    except FlowError as exc:
        fail_execution(execution, definition, error_record(exc), using=using)
        return Moved(saved=True)
    execution.context, execution.fanouts = state.context, state.fanouts
    moved = Moved()
    if lease is not None and advance.ready and not advance.completed:
        moved.lease = lease(claim.queue, execution.priority)
    moved.chained = apply_advance(
        execution,
        definition,
        advance,
        using=using,
        output=output,
        lease=moved.lease,
        deferred=deferred,
    )
    if advance.ready and execution.status in ACTIVE:
        execution.status = ExecutionStatus.RUNNING  # what settle_status would find
    else:
        settle_status(execution, using)
    return moved


def park_step(
    claim: ClaimedTask,
    *,
    wait: WaitSpec,
    effects: WaitEffects,
    duration_ms: int,
    using: str,
    logs: list[dict[str, Any]] | None = None,
) -> None:
    """Record that the attempt is waiting and park its task until the wait is due or
    satisfied. Raises LeaseLost."""
    now = timezone.now()
    with transaction.atomic(using=using):
        execution = lock_execution(claim.workflow_id, using)
        task = _take_task(claim, using)
        if execution.status not in ACTIVE:
            task.delete()
            return
        attempt_rows(task, claim.attempt, using).update(
            status=StepStatus.WAITING,
            **_timing(now, duration_ms),
            **_logs(claim, task, logs, using),
        )
        suspend_step(claim, task, execution, wait, effects, using=using)
        execution.save(using=using)
        if execution.status == ExecutionStatus.WAITING:
            outbox.event(
                lifecycle_event(
                    "workflow_waiting",
                    claim.workflow_id,
                    claim.workflow_name,
                    step=claim.step,
                    wait={"kind": wait.kind, "name": wait.name},
                ),
                using,
            )


def fail_step(
    claim: ClaimedTask,
    definition: Definition | None,
    *,
    error: dict[str, Any],
    retryable: bool,
    duration_ms: int,
    using: str,
    logs: list[dict[str, Any]] | None = None,
    waits: WaitEffects | None = None,
) -> datetime | None:
    """Record a failed attempt; retry it after its backoff or fail the execution.

    Returns when the retry is due, or None when the execution failed. Raises LeaseLost.
    Waits the attempt passed keep their values for the retry.
    """
    now = timezone.now()
    with transaction.atomic(using=using):
        execution = lock_execution(claim.workflow_id, using)
        task = _take_task(claim, using)
        apply_wait_effects(task, waits, using)
        if waits is not None:
            task.token = {**task.token, "waits": waits.recorded}
        attempt_rows(task, claim.attempt, using).update(
            status=StepStatus.FAILED,
            error=error,
            **_timing(now, duration_ms),
            **_logs(claim, task, logs, using),
        )
        if claim.kind == "compensate" and execution.status == ExecutionStatus.COMPENSATING:
            # A compensation this worker cannot even load (its workflow or step is unknown
            # here): with no definition the saga cannot go on, so it ends instead of waiting.
            task.delete()
            _add_compensation_error(execution, claim.step, error)
            finish(execution, ExecutionStatus.COMPENSATION_FAILED, using=using)
            return None
        if execution.status not in ACTIVE:
            task.delete()
            return None
        retry = definition.retry_for(definition.step(claim.step)) if definition else None
        # Attempts count from the current run's first (see durable.store.restarts).
        tried = claim.attempt - execution.attempt_floor
        if retryable and retry is not None and tried < retry.max_attempts:
            run_at = now + timedelta(seconds=retry.delay_after(tried))
            _reschedule(task, run_at, using)
            settle_status(execution, using)
            execution.save(using=using)
            step_event(
                "step_retrying",
                claim,
                task,
                using,
                error=_brief(error),
                retry_at=run_at.isoformat(),
            )
            return run_at
        task.delete()
        step_event("step_failed", claim, task, using, error=_brief(error))
        fail_execution(execution, definition, error, using=using)
        return None


def _brief(error: dict[str, Any]) -> dict[str, Any]:
    return {"type": error.get("type"), "message": error.get("message")}


def _reschedule(task: Task, run_at: datetime, using: str) -> None:
    task.status = TaskStatus.READY
    task.attempt += 1
    task.run_at = run_at
    task.lease_token = None
    task.leased_by = ""
    task.lease_expires_at = None
    task.wait = None  # a retry waits afresh (recorded values of passed waits are kept)
    task.save(using=using)
    outbox.ready([task], using)


def complete_compensation(
    claim: ClaimedTask,
    definition: Definition,
    *,
    error: dict[str, Any] | None,
    retryable: bool,
    duration_ms: int,
    using: str,
    logs: list[dict[str, Any]] | None = None,
    output: Any = None,
) -> None:
    """Record a compensation attempt (error=None: it succeeded) and run the next one."""
    now = timezone.now()
    with transaction.atomic(using=using):
        execution = lock_execution(claim.workflow_id, using)
        task = _take_task(claim, using)
        status = StepStatus.COMPLETED if error is None else StepStatus.FAILED
        attempt_rows(task, claim.attempt, using).update(
            status=status,
            error=error,
            output=output,
            **_timing(now, duration_ms),
            **_logs(claim, task, logs, using),
        )
        if execution.status != ExecutionStatus.COMPENSATING:
            task.delete()
            return
        token = task.token
        if error is not None:
            retry = definition.retry_for(definition.step(claim.step))
            tried = claim.attempt - execution.attempt_floor
            if retryable and tried < retry.max_attempts:
                _reschedule(task, now + timedelta(seconds=retry.delay_after(tried)), using)
                return
            _add_compensation_error(execution, claim.step, error)
        else:
            mark_step_rows(
                execution,
                claim.step,
                token.get("scope_key", ""),
                StepStatus.COMPENSATED,
                using=using,
            )
        task.delete()
        failed = bool(token.get("failed")) or error is not None
        if token.get("remaining"):
            enqueue_compensation(
                execution, definition, token["remaining"], failed=failed, using=using
            )
            execution.save(using=using)
            return
        final = ExecutionStatus.COMPENSATION_FAILED if failed else ExecutionStatus.COMPENSATED
        finish(execution, final, using=using)


def _add_compensation_error(execution: WorkflowExecution, step: str, error: dict[str, Any]) -> None:
    # Keep the original failure; list the compensations that failed beside it.
    execution.error = {
        **(execution.error or {}),
        "compensation_errors": [
            *(execution.error or {}).get("compensation_errors", []),
            {"step": step, **error},
        ],
    }
