"""Parking steps on waits and waking them: suspend, events, human input, resume.

Every function here locks the execution row first, so a wake-up (an event, a response)
and a step parking itself are serialised: whichever commits second sees the other, and no
wake-up is lost between a step checking for an event and parking.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from durable.exceptions import InvalidTransition, PendingInputNotFound, WaitConflict
from durable.flow.inputs import validate_response
from durable.flow.waits import WaitSpec
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    PendingInput,
    Task,
    TaskStatus,
    WorkflowEvent,
    WorkflowExecution,
)
from durable.store import outbox
from durable.store.children import child_settled, start_children
from durable.store.claims import attempt_scope_key
from durable.store.executions import lock_execution, settle_status
from durable.store.records import ClaimedTask, WaitEffects
from durable.store.rows import UNLEASED

# run_at of a task parked on a wait with no deadline: it runs only when woken.
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


def apply_wait_effects(task: Task, effects: WaitEffects | None, using: str) -> None:
    """Consume the events the run took, time out the inputs it gave up on and create the
    child workflows it started."""
    if effects is None:
        return
    now = timezone.now()
    start_children(task, effects.children, using)
    if effects.consumed_events:
        taken = (
            WorkflowEvent.objects.using(using)
            .filter(id__in=effects.consumed_events, consumed_at__isnull=True)
            .update(consumed_at=now, consumed_by=f"{task.step}@{attempt_scope_key(task)}")
        )
        if taken != len(effects.consumed_events):
            raise WaitConflict(
                f"step {task.step!r}: an event it consumed was consumed by another wait first"
            )
    for name, index in effects.timed_out_inputs:
        _inputs_of(task, using).filter(
            input_name=name, wait_index=index, status=PendingInput.Status.PENDING
        ).update(status=PendingInput.Status.TIMEOUT, completed_at=now)


def _inputs_of(task: Task, using: str) -> QuerySet[PendingInput]:
    return PendingInput.objects.using(using).filter(
        execution_id=task.execution_id, step_name=task.step, scope_key=attempt_scope_key(task)
    )


def suspend_step(
    claim: ClaimedTask,
    task: Task,
    execution: WorkflowExecution,
    wait: WaitSpec,
    effects: WaitEffects,
    *,
    using: str,
) -> None:
    """Park the (taken, locked) task on `wait`. Called inside the checkpoint transaction."""
    now = timezone.now()
    apply_wait_effects(task, effects, using)
    spec = wait.to_json()
    spec["seen_event_id"] = effects.seen_event_id
    task.status = TaskStatus.WAITING
    # A workflow deadline wakes the step too, so the timeout is enforced while it waits.
    task.run_at = min(d for d in (wait.deadline, execution.deadline_at, FAR_FUTURE) if d)
    task.wait = spec
    task.token = {**task.token, "waits": effects.recorded}
    for name, value in UNLEASED.items():
        setattr(task, name, value)
    if wait.kind == "input":
        _ensure_pending_input(task, execution, wait, using)
    if _satisfied_meanwhile(task, wait, effects, using):
        task.run_at = now
    task.save(using=using)
    # Told even when not due yet: a broker queue adapter publishes it delayed to run_at.
    outbox.ready([task], using, wake=task.run_at <= now)
    settle_status(execution, using)
    execution.current_step = task.step


def _ensure_pending_input(
    task: Task, execution: WorkflowExecution, wait: WaitSpec, using: str
) -> None:
    schema = wait.input_schema
    latest = _latest_input(task, wait, using)
    if latest is not None and latest.status == PendingInput.Status.PENDING:
        _inputs_of(task, using).filter(pk=latest.pk).update(timeout_at=wait.deadline)
        return
    if latest is not None and latest.status == PendingInput.Status.COMPLETED:
        return  # answered meanwhile: the step is woken at once
    # None yet, or the last one timed out for an earlier attempt: a retry asks afresh.
    PendingInput.objects.using(using).create(
        execution=execution,
        input_name=wait.name,
        step_name=task.step,
        scope_key=attempt_scope_key(task),
        wait_index=wait.index,
        type=schema.get("type", "free_text"),
        prompt=schema.get("prompt", ""),
        fields=schema.get("fields", []),
        choices=schema.get("choices", []),
        timeout_at=wait.deadline,
    )


def _satisfied_meanwhile(task: Task, wait: WaitSpec, effects: WaitEffects, using: str) -> bool:
    """Did the wait's event or response arrive after the step looked and before it parked?"""
    if wait.kind == "event":
        return (
            WorkflowEvent.objects.using(using)
            .filter(
                execution_id=task.execution_id,
                name=wait.name,
                consumed_at__isnull=True,
                id__gt=effects.seen_event_id,
            )
            .exists()
        )
    if wait.kind == "input":
        latest = _latest_input(task, wait, using)
        return latest is not None and latest.status == PendingInput.Status.COMPLETED
    if wait.kind == "child":
        return child_settled(task.execution_id, wait.name, using)
    return False


def _latest_input(task: Task, wait: WaitSpec, using: str) -> PendingInput | None:
    """The newest input row of this wait (each attempt that timed out leaves one behind)."""
    return (
        _inputs_of(task, using)
        .filter(input_name=wait.name, wait_index=wait.index)
        .order_by("-id")
        .first()
    )


def _wake(execution: WorkflowExecution, using: str, **wait_lookup: Any) -> None:
    """Make the execution's tasks parked on a matching wait due now."""
    lookup = {f"wait__{key}": value for key, value in wait_lookup.items()}
    parked = Task.objects.using(using).filter(
        execution=execution, status=TaskStatus.WAITING, **lookup
    )
    woken = list(parked)
    now = timezone.now()
    if parked.filter(id__in=[task.id for task in woken]).update(run_at=now):
        for task in woken:
            task.run_at = now
        outbox.ready(woken, using)


def _lock_active(workflow_id: str, using: str, action: str) -> WorkflowExecution:
    execution = lock_execution(workflow_id, using)
    if execution.status in FINISHED_STATUSES or execution.status == ExecutionStatus.COMPENSATING:
        raise InvalidTransition(f"cannot {action}: execution {workflow_id} is {execution.status}")
    return execution


def send_event(workflow_id: str, name: str, payload: Any, *, using: str) -> int:
    """Store an event for the execution and wake steps waiting for that name."""
    with transaction.atomic(using=using):
        execution = _lock_active(workflow_id, using, f"send event {name!r}")
        event = WorkflowEvent.objects.using(using).create(
            execution=execution, name=name, payload=payload
        )
        _wake(execution, using, kind="event", name=name)
    return int(event.pk)


def provide_input(
    workflow_id: str, name: str, response: Any, *, user_id: Any = None, using: str
) -> PendingInput:
    """Answer the oldest pending input `name`; the first valid response wins."""
    with transaction.atomic(using=using):
        execution = _lock_active(workflow_id, using, f"provide input {name!r}")
        inputs = PendingInput.objects.using(using).filter(execution=execution, input_name=name)
        pending = inputs.filter(status=PendingInput.Status.PENDING).order_by("id").first()
        if pending is None:
            answered = inputs.exclude(status=PendingInput.Status.PENDING).order_by("-id").first()
            if answered is not None:
                raise InvalidTransition(
                    f"input {name!r} of {workflow_id} is already {answered.status}; "
                    "only the first response counts"
                )
            open_names = sorted(
                set(
                    PendingInput.objects.using(using)
                    .filter(execution=execution, status=PendingInput.Status.PENDING)
                    .values_list("input_name", flat=True)
                )
            )
            raise PendingInputNotFound(
                f"execution {workflow_id} is not waiting for input {name!r} "
                f"(pending inputs: {', '.join(open_names) or 'none'})"
            )
        schema = {"type": pending.type, "fields": pending.fields, "choices": pending.choices}
        pending.response = validate_response(schema, response)
        pending.status = PendingInput.Status.COMPLETED
        pending.completed_at = timezone.now()
        pending.responded_by_id = user_id
        pending.save(using=using)
        _wake(execution, using, kind="input", name=name)
    return pending


def resume(workflow_id: str, data: dict[str, Any], *, using: str) -> None:
    """Satisfy every wait the execution is parked on (its value is `data`) and merge `data`
    into the context."""
    with transaction.atomic(using=using):
        execution = lock_execution(workflow_id, using)
        if execution.status != ExecutionStatus.WAITING:
            raise InvalidTransition(
                f"cannot resume execution {workflow_id}: it is {execution.status}, not waiting"
            )
        execution.context = {**execution.context, **data}
        # Branches of parallel/foreach blocks see their block's snapshot of the context, plus
        # their own writes: the snapshots get the data too, so a resumed branch sees it.
        execution.fanouts = {
            name: {**fanout, "base": {**fanout["base"], **data}}
            for name, fanout in execution.fanouts.items()
        }
        now = timezone.now()
        parked = list(
            Task.objects.using(using).filter(execution=execution, status=TaskStatus.WAITING)
        )
        for task in parked:
            wait = WaitSpec.from_json(task.wait) if task.wait else None
            if wait is not None and wait.kind == "input":
                _inputs_of(task, using).filter(
                    input_name=wait.name,
                    wait_index=wait.index,
                    status=PendingInput.Status.PENDING,
                ).update(status=PendingInput.Status.COMPLETED, response=data, completed_at=now)
            task.token = {**task.token, "waits": [*task.token.get("waits", []), data]}
            task.wait = None
            task.status = TaskStatus.READY
            task.run_at = now
            task.save(using=using)
        execution.save(using=using)
        outbox.ready(parked, using)
