"""Re-running a finished execution from one of its root-level steps or blocks.

The context a re-run starts from is the root context saved on the attempt row of the
first step that ran inside that node (`StepExecution.context_before`, written by the
claim at no extra query; see `claims.restart_snapshot`). The re-run's attempts are
numbered above every earlier attempt (`WorkflowExecution.attempt_floor`), so the old
rows stay as history and retry budgets count from the re-run's first attempt.

A compensated run (compensated, compensation_failed) has undone some of its steps. Its
re-run starts at the first of them (the root-level node around the earliest step whose
compensation ran), so it never ends `completed` with work still undone; a `from_step`
after that node is refused. `fork` starts a new execution instead, linked to its source,
from any step the source reached.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from durable.dsl import registry
from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.exceptions import ExecutionNotFound, InvalidTransition
from durable.flow.ops import copy_json
from durable.flow.position import enclosing
from durable.flow.router import FlowError, FlowState, Router
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    PendingInput,
    StepExecution,
    StepStatus,
    Task,
    WorkflowExecution,
)
from durable.signals import lifecycle_event
from durable.store import flowcontrol, outbox
from durable.store.branches import StoredBranches
from durable.store.executions import apply_advance, lock_execution
from durable.store.starts import Fork, Start

COMPENSATED_STATUSES = frozenset({ExecutionStatus.COMPENSATED, ExecutionStatus.COMPENSATION_FAILED})


def restart_node(definition: Definition, name: str) -> str:
    """The root-level node a re-run from `name` starts at: `name` itself, or for a step
    inside a block, its outermost enclosing block. ValueError for an unknown name."""
    if not isinstance(name, str) or name not in definition.by_name:
        roots = ", ".join(node.name for node in definition.nodes)
        raise ValueError(
            f"workflow {definition.name!r} has no step or block {name!r} "
            f"(root-level steps and blocks: {roots})"
        )
    chain = enclosing(definition, name)
    return chain[0][0].name if chain else name


def retry_execution(workflow_id: str, from_step: str | None, *, using: str) -> WorkflowExecution:
    """Re-run a finished execution from `from_step` (default: the step that failed)."""
    with transaction.atomic(using=using):
        execution = lock_execution(workflow_id, using)
        if execution.status == ExecutionStatus.CONTINUED:
            # Its successor carries on: a second run from the same point would fork the
            # chain behind the user's back.
            successor = execution.continuations.using(using).values_list("workflow_id", flat=True)
            raise InvalidTransition(
                f"execution {workflow_id} was continued as new run "
                f"{successor.first() or '(deleted)'}; retry that run instead"
            )
        if execution.status not in FINISHED_STATUSES:
            raise InvalidTransition(
                f"execution {workflow_id} is {execution.status}; only finished executions "
                "(completed, failed, cancelled, compensated...) can be retried"
            )
        if from_step is None and execution.status == ExecutionStatus.COMPLETED:
            # Nothing failed: "the failed step" would be the last one, run again.
            raise InvalidTransition(
                f"execution {workflow_id} completed: no step failed, so there is nothing to "
                "retry; pass from_step= to run it again from a step"
            )
        definition = registry.get(execution.workflow_name)
        root = _retry_root(execution, definition, from_step, using)
        context = _context_before(execution, definition, root, using)
        _reset(execution, definition, context, using)
        # A re-run counts against its concurrency key like a new start (the slot of the
        # run before went at its finish).
        flowcontrol.take_slot(definition, execution, using=using)
        branches = StoredBranches(execution.pk, using)
        state = FlowState(
            execution.context, {}, execution.workflow_id, execution.input, branches=branches
        )
        try:
            advance = Router(definition, state).restart_at(
                root, _decisions_before(execution, definition, root, using)
            )
        except FlowError as exc:
            raise InvalidTransition(f"cannot restart from {root!r}: {exc}") from exc
        branches.flush()
        execution.context, execution.fanouts = state.context, state.fanouts
        apply_advance(execution, definition, advance, using=using)
        execution.save(using=using)
        outbox.event(
            lifecycle_event(
                "workflow_retried",
                execution.workflow_id,
                execution.workflow_name,
                status=execution.status,
                from_step=root,
            ),
            using,
        )
    return execution


def first_compensated(
    execution: WorkflowExecution, definition: Definition, using: str
) -> str | None:
    """The root-level node around the earliest step the last run compensated (whether its
    compensation succeeded or not), or None if it compensated none."""
    if execution.status not in COMPENSATED_STATUSES:
        return None
    names = set(
        execution.steps.using(using)
        .filter(kind="compensate", attempt__gt=execution.attempt_floor)
        .values_list("step", flat=True)
    )
    if not names:
        return None
    missing = sorted(names - set(definition.by_name))
    if missing:
        raise InvalidTransition(
            f"execution {execution.workflow_id} compensated {', '.join(missing)}, which the "
            f"code of {definition.name!r} no longer has: a retry cannot re-run them; "
            "start a new run (durable.start, or durable.fork from a step the code still has)"
        )
    order = {node.name: index for index, node in enumerate(definition.nodes)}
    return min((restart_node(definition, name) for name in names), key=order.__getitem__)


def _retry_root(
    execution: WorkflowExecution, definition: Definition, from_step: str | None, using: str
) -> str:
    compensated = first_compensated(execution, definition, using)
    if compensated is None:
        return restart_node(definition, from_step or _failed_step(execution, definition, using))
    if from_step is None:
        return compensated
    root = restart_node(definition, from_step)
    order = [node.name for node in definition.nodes]
    if order.index(root) > order.index(compensated):
        raise InvalidTransition(
            f"execution {execution.workflow_id} is {execution.status}: its compensations "
            f"undid work from {compensated!r} on, so a retry from {from_step!r} would end "
            f"with that work still undone. Retry from {compensated!r} or earlier (the "
            f"default), or start a new linked run with durable.fork({execution.workflow_id!r}, "
            f"from_step={from_step!r})"
        )
    return root


def fork_start(workflow_id: str, from_step: str | None, *, using: str) -> tuple[Definition, Start]:
    """What `durable.fork` starts: the source's workflow (as the code defines it now) from
    `from_step` (None: the beginning) with the context saved before it, its input, queue
    and priority. Unknown id, unknown step or a step it never reached -> an error."""
    execution = WorkflowExecution.objects.using(using).filter(workflow_id=workflow_id).first()
    if execution is None:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}")
    definition = registry.get(execution.workflow_name)
    fork = Fork(execution.pk)
    if from_step is not None:
        root = restart_node(definition, from_step)
        fork = Fork(
            execution.pk,
            root,
            _context_before(execution, definition, root, using),
            _decisions_before(execution, definition, root, using),
        )
    start = Start(
        copy_json(execution.input),
        queue=execution.queue,
        priority=execution.priority,
        fork=fork,
    )
    return definition, start


def _inside(definition: Definition, root: str) -> list[str]:
    """The steps at or inside root-level node `root`."""
    return [
        step.name
        for step in definition.steps()
        if step.name == root or any(b.name == root for b, _ in enclosing(definition, step.name))
    ]


def _failed_step(execution: WorkflowExecution, definition: Definition, using: str) -> str:
    failed = (
        execution.steps.using(using)
        .filter(kind="step", status=StepStatus.FAILED, step__in=list(definition.by_name))
        .order_by("-id")
        .values_list("step", flat=True)
        .first()
    )
    if failed is not None:
        return failed
    if execution.current_step in definition.by_name:
        return execution.current_step
    raise ValueError(
        f"execution {execution.workflow_id} has no failed step to retry from; pass from_step="
    )


def _context_before(
    execution: WorkflowExecution, definition: Definition, root: str, using: str
) -> dict[str, Any]:
    # The latest run that reached `root` numbered its first attempts highest; within it,
    # the first row is the first step that ran inside `root`.
    row = (
        StepExecution.objects.using(using)
        .filter(execution=execution, kind="step", step__in=_inside(definition, root))
        .filter(context_before__isnull=False)
        .order_by("-attempt", "id")
        .values_list("context_before", flat=True)
        .first()
    )
    if row is None:
        raise InvalidTransition(
            f"execution {execution.workflow_id} never reached {root!r} (or reached it before "
            "restart points were recorded): there is no saved context to restart it from"
        )
    return dict(row)


def _decisions_before(
    execution: WorkflowExecution, definition: Definition, root: str, using: str
) -> dict[str, Any]:
    """Results of the decisions outside `root` that the re-run may route on."""
    inside = set(_inside(definition, root))
    names = [s.name for s in definition.steps() if s.kind == "decision" and s.name not in inside]
    rows = (
        execution.steps.using(using)
        .filter(kind="step", status=StepStatus.COMPLETED, step__in=names)
        .order_by("id")
        .values_list("step", "output")
    )
    return dict(rows)


def _reset(
    execution: WorkflowExecution, definition: Definition, context: dict[str, Any], using: str
) -> None:
    """Back to pending with the saved context; nothing of the old run's waits carries over."""
    now = timezone.now()
    Task.objects.using(using).filter(execution=execution).delete()
    execution.pending_inputs.using(using).filter(status=PendingInput.Status.PENDING).update(
        status=PendingInput.Status.CANCELLED, completed_at=now
    )
    floor = execution.steps.using(using).aggregate(top=Max("attempt"))["top"] or 0
    execution.attempt_floor = floor
    execution.status = ExecutionStatus.PENDING
    execution.context = copy_json(context)
    execution.fanouts = {}
    execution.error = None
    execution.result = None
    execution.result_explicit = False
    execution.completed_at = None
    execution.started_at = None
    execution.duration_ms = None
    execution.definition_fingerprint = fingerprint(definition)
    if definition.timeout is not None:
        execution.deadline_at = now + timedelta(seconds=definition.timeout)
