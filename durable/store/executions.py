"""Creating executions and ending them: start, cancel, fail (with compensation), complete."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models.base import ModelState
from django.utils import timezone

from durable.dsl.nodes import Definition
from durable.exceptions import ExecutionNotFound, InvalidTransition
from durable.flow.router import Advance, FlowError, FlowState, Router
from durable.flow.token import Token
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.signals import lifecycle_event
from durable.store import flowcontrol, outbox
from durable.store.backend import backend
from durable.store.branches import StoredBranches
from durable.store.lineage import lock_unfinished_descendants, notify_parent
from durable.store.records import error_record
from durable.store.rows import Lease
from durable.telemetry import tracing

logger = logging.getLogger("durable.store")


def begin(
    execution: WorkflowExecution, definition: Definition, *, run_at: datetime, using: str
) -> None:
    """Route a (saved, pending) execution from its input to its first ready steps."""
    branches = StoredBranches(execution.pk, using)
    state = FlowState(
        execution.context, {}, execution.workflow_id, execution.input, branches=branches
    )
    try:
        advance = Router(definition, state).start()
    except FlowError as exc:
        finish(execution, ExecutionStatus.FAILED, using=using, error=error_record(exc))
        return
    branches.flush()
    execution.context, execution.fanouts = state.context, state.fanouts
    apply_advance(execution, definition, advance, using=using, run_at=run_at)
    execution.save(using=using)


def apply_advance(
    execution: WorkflowExecution,
    definition: Definition,
    advance: Advance,
    *,
    using: str,
    run_at: datetime | None = None,
    output: Any = None,
    lease: Lease | None = None,
    deferred: Deferred | None = None,
) -> Task | None:
    """Queue the steps the router reached; finish the execution when it reached the end.

    With a `lease`, the first step queued on its queue is inserted claimed under it, and
    returned (see `enqueue_steps`). With `deferred`, the tasks to insert and the clean-up
    of a finished execution are left to the caller's batch. The caller saves `execution`.
    """
    chained = None
    if advance.ready:
        chained = enqueue_steps(
            execution,
            definition,
            advance.ready,
            using=using,
            run_at=run_at,
            lease=lease,
            deferred=deferred,
        )
        execution.current_step = advance.ready[-1].node
    if advance.completed:
        if not execution.result_explicit:  # ctx.set_result() wins over the last output
            execution.result = output
        finish(execution, ExecutionStatus.COMPLETED, using=using, save=False, deferred=deferred)
    return chained


@dataclass
class Deferred:
    """Writes a checkpoint (durable.store.checkpoint) makes once for all its outcomes."""

    tasks: list[Task] = field(default_factory=list)  # to insert and announce
    finished: list[WorkflowExecution] = field(default_factory=list)  # to end (Backend)


def new_tasks(
    execution: WorkflowExecution, definition: Definition, tokens: Sequence[Token], run_at: datetime
) -> list[Task]:
    """A ready task per token (not saved)."""
    return [
        unsaved_task(
            execution,
            step=token.node,
            token=token.to_json(),
            queue=definition.step(token.node).queue or execution.queue,
            priority=execution.priority,
            run_at=run_at,
            attempt=execution.attempt_floor + 1,
        )
        for token in tokens
    ]


# Task's field defaults: the constant ones once; the callable ones (dict()) per task.
_TASK_DEFAULTS = {
    f.attname: f.get_default()
    for f in Task._meta.concrete_fields
    if not (f.has_default() and callable(f.default))
}
_TASK_FACTORIES = [
    (f.attname, f.default)
    for f in Task._meta.concrete_fields
    if f.has_default() and callable(f.default)
]


def unsaved_task(execution: WorkflowExecution, **values: Any) -> Task:
    """`Task(execution=execution, **values)` at a fraction of its cost (a checkpoint makes
    one per step it queues): the field defaults, then `values`, no Model.__init__."""
    task = Task.__new__(Task)
    fields = dict(_TASK_DEFAULTS)
    fields.update((name, factory()) for name, factory in _TASK_FACTORIES)
    fields.update(values, execution_id=execution.pk)
    task.__dict__.update(fields)
    task._state = ModelState()
    Task.execution.field.set_cached_value(task, execution)
    return task


def enqueue_steps(
    execution: WorkflowExecution,
    definition: Definition,
    tokens: Sequence[Token],
    *,
    using: str,
    run_at: datetime | None = None,
    lease: Lease | None = None,
    deferred: Deferred | None = None,
) -> Task | None:
    """Insert a ready task per token. With a `lease`, the first task on `lease.queue` is
    inserted already claimed under it (no other worker is told about it) and returned.

    With `deferred`, the tasks are added to it instead: a checkpoint
    (durable.store.checkpoint) inserts and announces the tasks of all its outcomes at once."""
    run_at = run_at or timezone.now()
    tasks = new_tasks(execution, definition, tokens, run_at)
    chained = None
    flowcontrol.prepare_tasks(execution, definition, tasks, using=using)
    if lease is not None:
        # The first task on the lease's queue that is due now (not held for a concurrency
        # slot, not moved later by a rate limit) is inserted claimed.
        due = [t for t in tasks if t.status == TaskStatus.READY and t.run_at <= run_at]
        chained = next((t for t in due if t.queue == lease.queue), None)
        if chained is not None:
            for name, value in lease.columns().items():
                setattr(chained, name, value)
            chained.claims = 1
    if deferred is not None:
        deferred.tasks.extend(tasks)
        return chained
    backend(using).insert_tasks(tasks, timezone.now()).result()
    outbox.ready([task for task in tasks if task is not chained], using)
    return chained


# Statuses in which steps may still checkpoint and move the execution on.
ACTIVE = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.WAITING)


def settle_status(execution: WorkflowExecution, using: str) -> None:
    """Running while any of its tasks can run; waiting when all that is left is parked."""
    settle_statuses([execution], backend(using).parked_only([execution.pk]).result())


def settle_statuses(executions: Sequence[WorkflowExecution], parked_only: set[int]) -> None:
    """`settle_status` for each, given which of them have only parked tasks left
    (Backend.parked_only: one query for a checkpoint's executions)."""
    for execution in executions:
        if execution.status in ACTIVE:
            parked = execution.pk in parked_only
            execution.status = ExecutionStatus.WAITING if parked else ExecutionStatus.RUNNING


_CONCRETE = tuple(f for f in WorkflowExecution._meta.concrete_fields if not f.primary_key)

FINAL_EVENTS: dict[str, str] = {
    ExecutionStatus.COMPLETED: "workflow_completed",
    ExecutionStatus.FAILED: "workflow_failed",
    ExecutionStatus.COMPENSATED: "workflow_failed",
    ExecutionStatus.COMPENSATION_FAILED: "workflow_failed",
    ExecutionStatus.CANCELLED: "workflow_cancelled",
    ExecutionStatus.CONTINUED: "workflow_continued",
}


def finish(
    execution: WorkflowExecution,
    status: str,
    *,
    using: str,
    error: dict[str, Any] | None = None,
    save: bool = True,
    deferred: Deferred | None = None,
) -> None:
    """Move to a final status and drop every task still queued for the execution (with
    `deferred`, the caller's checkpoint does that for all its finished executions at once)."""
    now = timezone.now()
    execution.status = status
    execution.completed_at = now
    execution.fanouts = {}
    if error is not None:
        execution.error = error
    if execution.started_at is not None:
        execution.duration_ms = int((now - execution.started_at).total_seconds() * 1000)
    if deferred is not None:
        deferred.finished.append(execution)
    else:
        end_executions([execution], now, using)
    if save:
        execution.save(using=using)
    notify_parent(execution, using)
    tracing.workflow_finished(execution, using)
    event = FINAL_EVENTS.get(status)
    if event is not None:
        outbox.event(
            lifecycle_event(
                event,
                execution.workflow_id,
                execution.workflow_name,
                status=status,
                error=execution.error if status != ExecutionStatus.COMPLETED else None,
            ),
            using,
        )


def end_executions(executions: Sequence[WorkflowExecution], now: datetime, using: str) -> None:
    """Drop what executions that reached a final status leave behind (Backend.end_executions)
    and admit the next executions in line for the concurrency slots they held."""
    release_freed(backend(using).end_executions(executions, now).result(), using)


def release_freed(freed: Sequence[tuple[str, bool]], using: str) -> None:
    for scope, admitted in freed:
        flowcontrol.slot_released(scope, admitted, using=using)


def loaded_values(execution: WorkflowExecution) -> dict[str, Any]:
    """What `changed_columns` compares against: the row's values as locked (shallow), of
    the columns loaded (a deferred one is not read here, which would load it)."""
    loaded = execution.__dict__
    return {field.attname: loaded[field.attname] for field in _CONCRETE if field.attname in loaded}


def changed_columns(execution: WorkflowExecution, loaded: dict[str, Any]) -> set[str]:
    """The attnames whose values differ from `loaded` (see `loaded_values`)."""
    return {name for name, value in loaded.items() if getattr(execution, name) != value}


def lock_execution(workflow_id: str, using: str) -> WorkflowExecution:
    try:
        return (
            WorkflowExecution.objects.using(using)
            .select_for_update(no_key=_no_key(using))
            .get(workflow_id=workflow_id)
        )
    except WorkflowExecution.DoesNotExist:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}") from None


def _no_key(using: str) -> bool:
    return backend(using).no_key


def cancel_execution(workflow_id: str, reason: str, *, using: str) -> WorkflowExecution:
    """Cancel an unfinished execution and its unfinished child workflows, recursively."""
    with transaction.atomic(using=using):
        pk = WorkflowExecution.objects.using(using).filter(workflow_id=workflow_id).values("pk")
        # Descendants are locked before the execution itself (see durable/store/lineage.py).
        descendants = lock_unfinished_descendants(pk[0]["pk"], using) if pk else []
        execution = lock_execution(workflow_id, using)
        if execution.status in FINISHED_STATUSES:
            raise InvalidTransition(
                f"execution {workflow_id} is already {execution.status}; only unfinished "
                "executions can be cancelled"
            )
        finish(
            execution,
            ExecutionStatus.CANCELLED,
            using=using,
            error={"type": "Cancelled", "message": reason, "reason": reason},
        )
        for child in descendants:
            message = f"an ancestor workflow ({workflow_id}) was cancelled: {reason}"
            finish(
                child,
                ExecutionStatus.CANCELLED,
                using=using,
                error={"type": "Cancelled", "message": message, "reason": reason},
            )
    return execution


def fail_execution(
    execution: WorkflowExecution,
    definition: Definition | None,
    error: dict[str, Any],
    *,
    using: str,
    save: bool = True,
    deferred: Deferred | None = None,
) -> None:
    """Fail the (locked) execution; start compensating the completed steps, newest first.
    With `deferred` (and not `save`), the caller's checkpoint writes the execution."""
    pending = compensations_due(execution, definition, using=using) if definition else []
    if definition is None or not pending:
        finish(
            execution,
            ExecutionStatus.FAILED,
            using=using,
            error=error,
            save=save,
            deferred=deferred,
        )
        return
    Task.objects.using(using).filter(execution=execution).delete()
    execution.status = ExecutionStatus.COMPENSATING
    execution.error = error
    execution.fanouts = {}
    enqueue_compensation(execution, definition, pending, failed=False, using=using)
    if save:
        execution.save(using=using)


def compensations_due(
    execution: WorkflowExecution, definition: Definition, *, using: str
) -> list[list[Any]]:
    """[step, scope_key, item] for each completed step that has a compensation, newest first."""
    compensable = {s.name for s in definition.steps() if s.compensate}
    if not compensable:
        return []
    rows = (
        execution.steps.using(using)
        .filter(status=StepStatus.COMPLETED, kind="step", step__in=compensable)
        .order_by("-completed_at", "-id")
        .values_list("step", "scope_key", "input")
    )
    return [[step, scope_key, item] for step, scope_key, item in rows]


def enqueue_compensation(
    execution: WorkflowExecution,
    definition: Definition,
    pending: list[list[Any]],
    *,
    failed: bool,
    using: str,
) -> None:
    step_name, scope_key, item = pending[0]
    step = definition.step(step_name)
    token = {
        "node": step_name,
        "scope_key": scope_key,
        "item": item,
        "remaining": pending[1:],
        "failed": failed,
    }
    task = Task.objects.using(using).create(
        execution=execution,
        kind="compensate",
        step=step_name,
        token=token,
        queue=step.queue or execution.queue,
        priority=execution.priority,
        run_at=timezone.now(),
        attempt=execution.attempt_floor + 1,
    )
    execution.current_step = step_name
    outbox.ready([task], using)


def mark_step_rows(
    execution: WorkflowExecution, step: str, scope_key: str, status: str, *, using: str
) -> None:
    StepExecution.objects.using(using).filter(
        execution=execution,
        step=step,
        scope_key=scope_key,
        status=StepStatus.COMPLETED,
        kind="step",
    ).update(status=status)
