"""Executions whose position a deploy removed: parking them, mapping renames, reviving them.

A worker that claims a task of an execution started under another definition fingerprint
checks the execution's position (`durable.flow.position`) before running anything. A
position that `Workflow.renamed_steps` maps is rewritten (tasks, fan-outs, attempt rows,
pending inputs) and the task is handed back to run under its new name. A position that is
still missing parks the execution: status `needs_attention`, every task `parked` (leases
cleared, so steps still running elsewhere cannot checkpoint), the missing step named in
`error`. Nothing runs down a path the code no longer has.

A parked execution is revived, tasks back to ready/waiting, once its position is valid
again (the step restored, or a rename mapped): on worker start (`revive_parked`) and by
`durable.resume(wid)` (`revive`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import Enum

from django.db import transaction
from django.db.models import Q

from durable.dsl import registry
from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.exceptions import InvalidTransition, LeaseLost, WorkflowNotFound
from durable.flow import position
from durable.flow.position import Problem, TaskPosition
from durable.models import (
    ExecutionStatus,
    PendingInput,
    StepExecution,
    StepStatus,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.signals import lifecycle_event
from durable.store import outbox
from durable.store.claims import attempt_rows
from durable.store.executions import lock_execution, settle_status
from durable.store.records import ClaimedTask
from durable.store.rows import UNLEASED

logger = logging.getLogger("durable.store")

# Statuses whose executions have a position to check (the deploy check lists these).
IN_FLIGHT = (
    ExecutionStatus.PENDING,
    ExecutionStatus.RUNNING,
    ExecutionStatus.WAITING,
    ExecutionStatus.COMPENSATING,
    ExecutionStatus.NEEDS_ATTENTION,
)


class ClaimCheck(Enum):
    RUN = "run"  # the position exists: run the claim
    RELEASE = "release"  # renames moved it: hand the claim back, it runs under its new name
    PARKED = "parked"  # the execution needs attention; the claim is void


def check_claim(claim: ClaimedTask, definition: Definition, *, using: str) -> ClaimCheck:
    """Whether a claimed task may run under `definition`. Costs nothing for executions that
    started with this definition's structure."""
    if claim.fingerprint == fingerprint(definition):
        return ClaimCheck.RUN
    with transaction.atomic(using=using):
        execution = lock_execution(claim.workflow_id, using)
        tasks = list(Task.objects.using(using).select_for_update().filter(execution=execution))
        ours = next((t for t in tasks if t.id == claim.task_id), None)
        if ours is None or ours.lease_token != claim.lease_token:
            raise LeaseLost(f"{claim.step!r} of {claim.workflow_id}: the lease was lost")
        if position.task_problem(definition, _position(ours), execution.fanouts) is None:
            return ClaimCheck.RUN
        problems = _reposition(execution, definition, tasks, using)
        if not problems:
            execution.save(using=using)
            return ClaimCheck.RELEASE
        _park(execution, tasks, problems, using)
    return ClaimCheck.PARKED


def check_checkpoint(
    claim: ClaimedTask, definition: Definition, execution: WorkflowExecution, *, using: str
) -> bool:
    """Before routing a finished step (in its checkpoint's transaction, the execution
    locked): False when the token or an open fan-out it returns to is gone; the execution
    is then parked and the step's outcome discarded (it runs again once revived)."""
    if execution.definition_fingerprint == fingerprint(definition):
        return True
    token = TaskPosition(claim.kind, claim.step, claim.token.to_json())
    if position.task_problem(definition, token, execution.fanouts) is None:
        return True
    tasks = list(Task.objects.using(using).select_for_update().filter(execution=execution))
    problems = _reposition(execution, definition, tasks, using)
    _park(execution, tasks, problems or [_unmapped(claim)], using)
    return False


def _unmapped(claim: ClaimedTask) -> Problem:
    return Problem(claim.step, claim.step, f"the position of {claim.step!r} changed mid-step")


def revive(workflow_id: str, *, using: str) -> list[Problem]:
    """Resume a parked execution whose position is valid again. Returns the problems that
    remain (the execution stays parked, its message updated) or [] when it runs again."""
    with transaction.atomic(using=using):
        execution = lock_execution(workflow_id, using)
        if execution.status != ExecutionStatus.NEEDS_ATTENTION:
            raise InvalidTransition(
                f"execution {workflow_id} is {execution.status}, not needs_attention"
            )
        definition = registry.get(execution.workflow_name)
        tasks = list(Task.objects.using(using).select_for_update().filter(execution=execution))
        problems = _reposition(execution, definition, tasks, using)
        if problems:
            _park(execution, tasks, problems, using, announce_event=False)
            return problems
        _unpark(execution, tasks, using)
    return []


def revive_parked(*, using: str) -> set[str]:
    """Revive every parked execution of a workflow this process knows whose position is
    valid again (run when a worker starts, i.e. after a deploy). Returns the queues that
    got work back."""
    names = [d.name for d in registry.all_definitions()]
    revived: set[str] = set()
    for workflow_id in (
        WorkflowExecution.objects.using(using)
        .filter(status=ExecutionStatus.NEEDS_ATTENTION, workflow_name__in=names)
        .values_list("workflow_id", flat=True)
    ):
        try:
            if not revive(workflow_id, using=using):
                revived.update(parked_queues(workflow_id, using=using))
        except (InvalidTransition, WorkflowNotFound):
            continue  # revived or ended meanwhile
    return revived


def stranded(
    *, using: str, workflows: Iterable[str] | None = None
) -> list[tuple[WorkflowExecution, list[Problem]]]:
    """In-flight executions the current code's definitions would strand, with why.
    Renames the code maps are applied in memory only: they are not problems."""
    definitions = {d.name: d for d in registry.all_definitions()}
    out: list[tuple[WorkflowExecution, list[Problem]]] = []
    executions = WorkflowExecution.objects.using(using).filter(status__in=IN_FLIGHT)
    if workflows is not None:
        executions = executions.filter(workflow_name__in=list(workflows))
    for execution in executions.order_by("id").iterator(chunk_size=500):
        definition = definitions.get(execution.workflow_name)
        if definition is None:
            # The whole workflow is gone: no worker running this code can go on with it.
            gone = f"workflow {execution.workflow_name!r} no longer exists in this code"
            position_now = execution.current_step or "-"
            out.append((execution, [Problem(position_now, execution.workflow_name, gone)]))
            continue
        if (
            execution.definition_fingerprint == fingerprint(definition)
            and execution.status != ExecutionStatus.NEEDS_ATTENTION
        ):
            continue
        renames = definition.renamed_steps
        tasks = [_position(t, renames) for t in execution.tasks.using(using)]
        fanouts = position.rename_fanouts(renames, execution.fanouts)
        problems = position.execution_problems(definition, tasks, fanouts)
        if problems:
            out.append((execution, problems))
    return out


def _position(task: Task, renames: dict[str, str] | None = None) -> TaskPosition:
    if not renames:
        return TaskPosition(task.kind, task.step, task.token)
    if task.kind == "compensate":
        token = position.rename_compensation(renames, task.token)
    else:
        token = position.rename_token(renames, task.token)
    return TaskPosition(task.kind, renames.get(task.step, task.step), token)


def _reposition(
    execution: WorkflowExecution, definition: Definition, tasks: list[Task], using: str
) -> list[Problem]:
    """Apply `renamed_steps` to the execution's position (tasks saved here, the execution
    by the caller); return what is still missing."""
    renames = definition.renamed_steps
    if renames and _mentions(execution, tasks, renames):
        for task in tasks:
            moved = _position(task, renames)
            if moved.step != task.step or moved.token != task.token:
                task.step, task.token = moved.step, dict(moved.token)
                task.save(using=using, update_fields=["step", "token"])
        execution.fanouts = position.rename_fanouts(renames, execution.fanouts)
        execution.current_step = renames.get(execution.current_step, execution.current_step)
        _rename_history(execution, renames, using)
    positions = [_position(task) for task in tasks]
    return position.execution_problems(definition, positions, execution.fanouts)


def _mentions(execution: WorkflowExecution, tasks: list[Task], renames: dict[str, str]) -> bool:
    text = repr([execution.fanouts, [(t.step, t.token) for t in tasks]])
    return any(old in text for old in renames)


def _rename_history(execution: WorkflowExecution, renames: dict[str, str], using: str) -> None:
    """Attempt rows and pending inputs follow the rename, so compensations, waits and the
    graph find them under the new name."""
    for old, new in renames.items():
        execution.steps.using(using).filter(step=old).update(step=new)
        execution.pending_inputs.using(using).filter(step_name=old).update(step_name=new)
        for model in (StepExecution, PendingInput):
            rows = model.objects.using(using).filter(execution=execution, scope_key__contains=old)
            for row in rows:
                row.scope_key = position.rename_in_id(renames, row.scope_key)
                row.save(using=using, update_fields=["scope_key"])


def _park(
    execution: WorkflowExecution,
    tasks: list[Task],
    problems: list[Problem],
    using: str,
    *,
    announce_event: bool = True,
) -> None:
    for task in tasks:
        if task.status == TaskStatus.CLAIMED:
            # The run holding it (here or elsewhere) can no longer checkpoint: its lease
            # goes; the attempt shows as not running, and runs again once revived.
            attempt_rows(task, task.attempt, using).filter(status=StepStatus.RUNNING).update(
                status=StepStatus.WAITING if task.wait else StepStatus.PENDING, worker_id=""
            )
    # Tasks held for a concurrency slot stay held: the slot's release admits them, and a
    # revival must not make them claimable before that.
    Task.objects.using(using).filter(execution=execution).exclude(status=TaskStatus.HELD).update(
        status=TaskStatus.PARKED, **UNLEASED
    )
    missing = sorted({p.missing for p in problems})
    previous = (
        (execution.error or {}).get("previous_status", ExecutionStatus.RUNNING)
        if execution.status == ExecutionStatus.NEEDS_ATTENTION
        else execution.status
    )
    was_parked = execution.status == ExecutionStatus.NEEDS_ATTENTION
    saga_error = (execution.error or {}).get("saga_error") if was_parked else execution.error
    execution.status = ExecutionStatus.NEEDS_ATTENTION
    execution.error = {
        "type": "NeedsAttention",
        "message": "the deployed code no longer has this execution's position: "
        + "; ".join(f"{p.position}: {p.message}" for p in problems)
        + ". Restore the step, or map it in renamed_steps, then durable.resume(id).",
        "missing_steps": missing,
        "positions": [p.position for p in problems],
        "previous_status": previous,
        "saga_error": saga_error if previous == ExecutionStatus.COMPENSATING else None,
    }
    execution.save(using=using)
    logger.warning("execution %s needs attention: %s", execution.workflow_id, missing)
    if announce_event:
        outbox.event(
            lifecycle_event(
                "workflow_needs_attention",
                execution.workflow_id,
                execution.workflow_name,
                status=ExecutionStatus.NEEDS_ATTENTION,
                missing_steps=missing,
                error=execution.error,
            ),
            using,
        )


def _unpark(execution: WorkflowExecution, tasks: list[Task], using: str) -> None:
    ids = [t.id for t in tasks]
    held = Q(id__in=ids, status=TaskStatus.PARKED)
    Task.objects.using(using).filter(held, wait__isnull=True).update(status=TaskStatus.READY)
    Task.objects.using(using).filter(held, wait__isnull=False).update(status=TaskStatus.WAITING)
    parked = execution.error or {}
    execution.error = None
    if parked.get("previous_status") == ExecutionStatus.COMPENSATING:
        # A saga keeps its original failure beside the compensations still to run.
        execution.status = ExecutionStatus.COMPENSATING
        execution.error = parked.get("saga_error")
    else:
        execution.status = ExecutionStatus.RUNNING
        settle_status(execution, using)
    execution.save(using=using)
    outbox.ready([t for t in tasks if t.status == TaskStatus.PARKED], using)
    logger.info("execution %s revived after needing attention", execution.workflow_id)


def parked_queues(workflow_id: str, *, using: str) -> list[str]:
    """The queues of an execution's tasks (what a revival reports; its tasks are announced,
    and published to a broker, by `_unpark`)."""
    rows = Task.objects.using(using).filter(execution__workflow_id=workflow_id)
    return sorted(set(rows.values_list("queue", flat=True)))
