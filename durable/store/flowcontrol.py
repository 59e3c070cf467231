"""Flow control in the database: concurrency slots per key, rate-limit pacing, held tasks.

Everything here runs inside the transaction that creates an execution, queues its steps
or finishes it, under a row lock on the scope's `FlowKey` row, so limits hold however many
worker processes and callers there are.

- Concurrency: an execution of a workflow with `concurrency_key` takes a `FlowSlot` when
  it is created. Over the limit, its first tasks are `held` (never claimed) until an
  execution of the same key finishes: `finish()` releases its slot and admits the oldest
  waiting one. A waiting (or compensating) execution keeps its slot.
- Rate limits pace starts by giving each one the next free slot of its scope (GCRA with no
  burst: one start every period/count). A workflow's `rate_limit` paces executions
  beginning (their first steps); a queue's `rate_limit` paces every step queued on it.
  Tasks queued for later (scheduled starts, debounce, retries, woken waits) are not paced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl import registry
from durable.dsl.limits import Rate, key_of, parse_rate
from durable.dsl.nodes import Definition
from durable.exceptions import WorkflowNotFound
from durable.models import (
    ExecutionStatus,
    FlowKey,
    FlowSlot,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.store import outbox
from durable.store.backend import backend

MAX_SCOPE_LENGTH = 255


def scope_name(*parts: str) -> str:
    """`kind:workflow:key`; hashed past the column's length so distinct keys stay distinct."""
    scope = ":".join(parts)
    if len(scope) <= MAX_SCOPE_LENGTH:
        return scope
    return f"{scope[:180]}#{hashlib.sha256(scope.encode()).hexdigest()}"


def lock_scope(scope: str, using: str) -> FlowKey:
    """The scope's row, created on first use and locked until the transaction ends."""
    FlowKey.objects.using(using).bulk_create([FlowKey(scope=scope)], ignore_conflicts=True)
    return FlowKey.objects.using(using).select_for_update().get(scope=scope)


def take_slot(definition: Definition, execution: WorkflowExecution, *, using: str) -> None:
    """Give a new execution a concurrency slot, or a place in line for one."""
    flow = definition.flow
    if flow is None or flow.concurrency_limit is None:
        return
    key = key_of(
        flow.concurrency_key, execution.input, workflow=definition.name, option="concurrency_key"
    )
    scope = scope_name("concurrency", definition.name, key)
    row = lock_scope(scope, using)
    if row.limit != flow.concurrency_limit:
        # The limit of the deployed code applies to admissions from now on.
        row.limit = flow.concurrency_limit
        row.save(using=using, update_fields=["limit"])
    held = FlowSlot.objects.using(using).filter(scope=scope, admitted=True).count()
    FlowSlot.objects.using(using).create(
        execution=execution, scope=scope, admitted=held < flow.concurrency_limit
    )


def prepare_tasks(
    execution: WorkflowExecution, definition: Definition, tasks: Sequence[Task], *, using: str
) -> None:
    """Before `tasks` are inserted: hold them while their execution waits for a slot,
    otherwise pace them by the rate limits that apply."""
    starting = execution.status == ExecutionStatus.PENDING
    flow = definition.flow
    if starting and flow is not None and flow.concurrency_limit is not None:
        waiting = FlowSlot.objects.using(using).filter(execution=execution, admitted=False)
        if waiting.exists():
            for task in tasks:
                task.status = TaskStatus.HELD
            return
    pace(execution, definition, tasks, starting=starting, using=using)


def pace(
    execution: WorkflowExecution,
    definition: Definition,
    tasks: Sequence[Task],
    *,
    starting: bool,
    using: str,
) -> None:
    """Move the due `tasks` to the next free slots of their rate limits."""
    now = timezone.now()
    if not tasks or any(task.run_at > now for task in tasks):
        return
    # Without a limit that moves them, tasks keep the run_at they were made with: a
    # checkpoint chains the task it queued only if that is still due at its own clock, and
    # an old `run_after` keeps its place in the claim order.
    due: datetime | None = None
    flow = definition.flow
    if starting and flow is not None and flow.rate is not None:
        key = key_of(
            flow.rate_key, execution.input, workflow=definition.name, option="rate_limit_key"
        )
        due = next_slot(scope_name("rate", "workflow", definition.name, key), flow.rate, now, using)
    # Scopes are locked in one order (workflow, then queues by name): two transactions
    # queueing steps on the same queues never wait for each other in a cycle.
    for queue in sorted({task.queue for task in tasks}):
        rate = queue_rate(queue)
        for task in tasks:
            if task.queue != queue:
                continue
            if rate is not None:
                task.run_at = next_slot(scope_name("rate", "queue", queue), rate, due or now, using)
            elif due is not None:
                task.run_at = due


def queue_rate(queue: str) -> Rate | None:
    text = durable_settings.queue_rate_limit(queue)
    return parse_rate(text) if text is not None else None


def next_slot(scope: str, rate: Rate, due: datetime, using: str) -> datetime:
    """The earliest start at or after `due` that keeps `scope` within `rate`; taken."""
    row = lock_scope(scope, using)
    slot = max(due, row.next_at) if row.next_at is not None else due
    row.next_at = slot + rate.interval
    row.save(using=using, update_fields=["next_at"])
    return slot


def release_slot(execution: WorkflowExecution, *, using: str) -> None:
    """A finishing execution gives its slot to the oldest execution waiting for one."""
    slot = FlowSlot.objects.using(using).filter(execution_id=execution.pk).first()
    if slot is None:
        return
    slot.delete(using=using)
    slot_released(slot.scope, slot.admitted, using=using)


def slot_released(scope: str, admitted: bool, *, using: str) -> None:
    """After an execution's slot row of `scope` was deleted: an admitted one frees a place."""
    if admitted:
        admit_waiting(scope, using=using)


def admit_waiting(scope: str, *, using: str) -> None:
    row = lock_scope(scope, using)
    free = (row.limit or 1) - FlowSlot.objects.using(using).filter(
        scope=scope, admitted=True
    ).count()
    skip_locked = backend(using).skip_locked
    while free > 0:
        line = (
            FlowSlot.objects.using(using)
            .filter(scope=scope, admitted=False)
            .select_related("execution")
            .order_by("id")
        )
        if skip_locked:
            # An execution being cancelled right now holds its row: skip it rather than
            # wait for a transaction that is itself waiting for this scope.
            line = line.select_for_update(skip_locked=True, of=("self", "execution"))
        slot = line.first()
        if slot is None:
            return
        slot.admitted = True
        slot.save(using=using, update_fields=["admitted"])
        _unhold(slot.execution, using)
        free -= 1


def _unhold(execution: WorkflowExecution, using: str) -> None:
    tasks = list(Task.objects.using(using).filter(execution=execution, status=TaskStatus.HELD))
    for task in tasks:
        task.status = TaskStatus.READY
    try:
        definition = registry.get(execution.workflow_name)
    except WorkflowNotFound:
        definition = None  # not loaded in this process: run it unpaced rather than never
    if definition is not None:
        pace(execution, definition, tasks, starting=True, using=using)
    Task.objects.using(using).bulk_update(tasks, ["status", "run_at"])
    outbox.ready(tasks, using)
