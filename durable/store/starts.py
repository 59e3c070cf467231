"""Starting executions: one, or a list of them, in one transaction or one statement.

Each start is planned in memory first: the execution's row, its context, and the first
steps the router reaches from its input (as plain records: a model instance per row would
cost more than the insert). A plain start (no flow control; routing reached steps within
the fan-out window) is then written by one statement (durable.store.sql.START_SQL on
PostgreSQL): the executions, their tasks and the wake-up of the workers. The rest (a
concurrency key, a rate limit, a foreach wider than its window, a routing that fails or
ends at once) takes a transaction, with the same plans. `durable.start`,
`durable.start_many`, child workflows and debounced starts all come through here.

An idempotency key that exists already gives back that execution and starts nothing; a
key given twice in one call starts one execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.flow.ops import copy_json
from durable.flow.router import FlowError, FlowState, Router
from durable.models import ExecutionStatus, Task, WorkflowExecution, new_workflow_id
from durable.store import flowcontrol, outbox
from durable.store.backend import backend
from durable.store.branches import StoredBranches
from durable.store.executions import finish
from durable.store.outbox import CHANNEL
from durable.store.records import error_record
from durable.store.rows import NewExecution, NewTask
from durable.telemetry import tracing


@dataclass(frozen=True)
class Fork:
    """A start that forks execution `source_pk` (durable.fork): at root-level node `node`
    (empty: from the beginning) with the context saved before it and the decision results
    recorded before it."""

    source_pk: int
    node: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Start:
    """One execution to start."""

    input: dict[str, Any]
    queue: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None
    # Given for a child workflow (durable.store.children).
    workflow_id: str | None = None
    parent_id: int | None = None
    # The trace its spans join, when not the caller's (a child: its parent's run).
    trace_context: dict[str, str] | None = None
    fork: Fork | None = None


@dataclass
class _Plan:
    row: NewExecution
    branches: StoredBranches
    fork: Fork | None = None
    tasks: list[NewTask] = field(default_factory=list)
    completed: bool = False
    error: dict[str, Any] | None = None

    @property
    def plain(self) -> bool:
        return not (self.completed or self.error or self.branches.pending)


def start_executions(definition: Definition, starts: Sequence[Start], *, using: str) -> list[str]:
    """Create an execution per start (of `definition`) with its first tasks; one per
    idempotency key. Returns their workflow ids, in the order given."""
    now = timezone.now()
    plans: dict[str, _Plan] = {}  # by idempotency key, or by workflow id
    order: list[str] = []
    constant = _Constant(definition)
    for start in starts:
        name = start.idempotency_key or ""
        if not name or name not in plans:
            plan = _plan(definition, constant, start, now)
            name = name or plan.row.workflow_id
            plans[name] = plan
        order.append(name)
    keys = [p.row.idempotency_key for p in plans.values() if p.row.idempotency_key]
    # A fork's link to its source is written after the insert, in its transaction.
    simple = definition.flow is None and all(p.plain and not p.fork for p in plans.values())
    existing: dict[str, str] = {}
    for last_try in (False, True):
        try:
            with _transaction(using, needed=bool(keys) or not simple):
                existing = _existing(keys, definition, using)
                fresh = [p for p in plans.values() if p.row.idempotency_key not in existing]
                if fresh and simple:
                    _insert(fresh, [t for p in fresh for t in p.tasks], now, using)
                elif fresh:
                    _insert_then_route(definition, fresh, now, using)
            break
        except _KeyTaken:
            # A start with one of our keys committed between the look-up and the insert:
            # nothing of ours committed; the next look-up finds it.
            if last_try:
                raise
    return [
        existing.get(plans[name].row.idempotency_key or "", plans[name].row.workflow_id)
        for name in order
    ]


def continue_execution(
    execution: WorkflowExecution, definition: Definition, input: dict[str, Any], *, using: str
) -> str:
    """Inside the checkpoint that ends `execution` with `ctx.continue_as_new(input)`: start
    the run that carries on (same workflow, queue and priority), linked by `continued_from`.
    Its idempotency key is the ended run's, so it is started once."""
    [workflow_id] = start_executions(
        definition,
        [
            Start(
                input,
                queue=execution.queue,
                priority=execution.priority,
                idempotency_key=f"durable:continued:{execution.workflow_id}",
            )
        ],
        using=using,
    )
    WorkflowExecution.objects.using(using).filter(
        workflow_id=workflow_id, continued_from__isnull=True
    ).update(continued_from=execution.pk)
    return workflow_id


def _transaction(using: str, *, needed: bool) -> AbstractContextManager[Any]:
    # A plain start without keys is one statement, atomic by itself.
    return transaction.atomic(using=using) if needed else nullcontext()


class _Constant:
    """What every start of one definition shares (read once per call)."""

    def __init__(self, definition: Definition) -> None:
        self.module = definition.workflow_class.__module__
        self.version = str(definition.version)
        self.fingerprint = fingerprint(definition)
        # The caller's trace, which the run's spans join (one read for a start_many).
        self.trace_context = tracing.carrier()


def _plan(definition: Definition, constant: _Constant, start: Start, now: datetime) -> _Plan:
    fork = start.fork
    context = copy_json(fork.context if fork is not None and fork.node else start.input)
    workflow_id = start.workflow_id or new_workflow_id()
    queue = start.queue or definition.queue
    deadline = None
    if definition.timeout is not None:
        deadline = (start.scheduled_at or now) + timedelta(seconds=definition.timeout)
    plan = _Plan(
        NewExecution(
            workflow_id=workflow_id,
            module=constant.module,
            name=definition.name,
            queue=queue,
            priority=start.priority,
            input=start.input,
            context=context,
            fanouts={},
            current_step="",
            scheduled_at=start.scheduled_at,
            idempotency_key=start.idempotency_key,
            deadline_at=deadline,
            parent_id=start.parent_id,
            version=constant.version,
            fingerprint=constant.fingerprint,
            trace_context=start.trace_context or constant.trace_context,
        ),
        StoredBranches(0, "", unsaved=True),
        fork=fork,
    )
    state = FlowState(context, {}, workflow_id, start.input, branches=plan.branches)
    router = Router(definition, state)
    try:
        if fork is not None and fork.node:
            advance = router.restart_at(fork.node, fork.decisions)
        else:
            advance = router.start()
    except FlowError as exc:
        plan.error = error_record(exc)
        return plan
    plan.row.context, plan.row.fanouts = state.context, state.fanouts
    plan.completed = advance.completed
    run_at = start.scheduled_at or now
    for token in advance.ready:
        plan.row.current_step = token.node
        plan.tasks.append(
            NewTask(
                workflow_id=workflow_id,
                step=token.node,
                token=token.to_json(),
                queue=definition.step(token.node).queue or queue,
                priority=start.priority,
                run_at=run_at,
            )
        )
    return plan


def _existing(keys: Sequence[str | None], definition: Definition, using: str) -> dict[str, str]:
    """The workflow ids of the executions that hold `keys` already, by key."""
    if not keys:
        return {}
    rows = WorkflowExecution.objects.using(using).filter(idempotency_key__in=keys)
    found: dict[str, str] = {}
    for key, workflow_id, name in rows.values_list(
        "idempotency_key", "workflow_id", "workflow_name"
    ):
        # Another workflow's execution would hand the caller results it never asked for.
        if name != definition.name:
            raise ValueError(
                f"idempotency_key {key!r} already belongs to execution {workflow_id} of "
                f"workflow {name!r}, not {definition.name!r}"
            )
        found[str(key)] = str(workflow_id)
    return found


def _insert(plans: list[_Plan], tasks: list[NewTask], now: datetime, using: str) -> None:
    """Insert the executions of `plans` and `tasks` (each task's execution among them)."""
    rows = [p.row for p in plans]
    backend(using).start_executions(rows, tasks, now, CHANNEL)
    lost = [row.idempotency_key for row in rows if row.pk is None]
    if lost:
        raise _KeyTaken(f"idempotency keys taken meanwhile: {lost}")
    outbox.ready([t for t in tasks if t.id is not None], using, notified=True)


class _KeyTaken(Exception):
    pass


def _insert_then_route(
    definition: Definition, plans: list[_Plan], now: datetime, using: str
) -> None:
    """Inside a transaction: insert the executions, then what needs their rows: their
    concurrency slots and paced or held tasks, parked items, an end at once."""
    _insert(plans, [], now, using)
    executions = WorkflowExecution.objects.using(using).in_bulk([plan.row.pk for plan in plans])
    tasks: list[Task] = []
    for plan in plans:
        assert plan.row.pk is not None
        execution = executions[plan.row.pk]
        if plan.fork is not None:
            execution.forked_from_id = plan.fork.source_pk
            execution.forked_from_step = plan.fork.node
            execution.save(using=using, update_fields=["forked_from", "forked_from_step"])
        flowcontrol.take_slot(definition, execution, using=using)
        branches = plan.branches
        branches.execution_pk, branches.using, branches.unsaved = execution.pk, using, False
        branches.flush()
        if plan.error is not None:
            finish(execution, ExecutionStatus.FAILED, using=using, error=plan.error)
            continue
        if plan.completed:
            finish(execution, ExecutionStatus.COMPLETED, using=using)
            continue
        planned = [t.as_task(execution) for t in plan.tasks]
        flowcontrol.prepare_tasks(execution, definition, planned, using=using)
        tasks += planned
    if tasks:
        backend(using).insert_tasks(tasks, now).result()
        outbox.ready(tasks, using)
