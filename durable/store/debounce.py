"""Debounced starts: a burst of starts with one key runs once, with the last input.

The first start of a key creates an execution scheduled `debounce` seconds ahead and
records it on the key's `FlowKey` row. Each later start, while that execution has not
begun running, replaces its input and pushes its start to now + debounce (a sliding
window) and returns the same execution. Once a worker has claimed its first step, the
next start begins a new debounced execution. The key's row lock serialises callers; the
execution's task rows are locked too, so a claim either precedes the join (the start sees
it began) or waits for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.dsl.limits import key_of
from durable.dsl.nodes import Definition
from durable.flow.ops import copy_json
from durable.models import (
    ExecutionStatus,
    StepExecution,
    Task,
    TaskStatus,
    WorkflowExecution,
)
from durable.store.executions import begin
from durable.store.flowcontrol import lock_scope, scope_name
from durable.store.starts import Start, start_executions

# Statuses of a debounced execution's tasks before any worker took one.
NOT_BEGUN = (TaskStatus.READY, TaskStatus.HELD)


def start_debounced(
    definition: Definition,
    input: dict[str, Any],
    *,
    using: str,
    queue: str | None = None,
    priority: int = 0,
) -> WorkflowExecution:
    """Join the key's not-yet-running execution (last input wins) or create a new one."""
    flow = definition.flow
    if flow is None or flow.debounce is None:
        raise ValueError(f"workflow {definition.name!r} declares no debounce")
    key = key_of(flow.debounce_key, input, workflow=definition.name, option="debounce_key")
    with transaction.atomic(using=using):
        row = lock_scope(scope_name("debounce", definition.name, key), using)
        run_at = timezone.now() + timedelta(seconds=flow.debounce)
        if row.execution_id is not None:
            execution = (
                WorkflowExecution.objects.using(using)
                .select_for_update()
                .filter(pk=row.execution_id, status=ExecutionStatus.PENDING)
                .first()
            )
            if execution is not None and _not_begun(execution, using):
                _replan(execution, definition, input, queue, priority, run_at, using)
                return execution
        (workflow_id,) = start_executions(
            definition,
            [Start(input, queue=queue, priority=priority, scheduled_at=run_at)],
            using=using,
        )
        execution = WorkflowExecution.objects.using(using).get(workflow_id=workflow_id)
        row.execution = execution
        row.save(using=using, update_fields=["execution"])
    return execution


def _not_begun(execution: WorkflowExecution, using: str) -> bool:
    statuses = set(
        Task.objects.using(using)
        .select_for_update()
        .filter(execution=execution)
        .values_list("status", flat=True)
    )
    if not statuses or not statuses <= set(NOT_BEGUN):
        return False
    return not StepExecution.objects.using(using).filter(execution=execution).exists()


def _replan(
    execution: WorkflowExecution,
    definition: Definition,
    input: dict[str, Any],
    queue: str | None,
    priority: int,
    run_at: datetime,
    using: str,
) -> None:
    """Give the pending execution the new input and start time; its steps are routed again
    from that input (a first `switch` may now pick another case)."""
    Task.objects.using(using).filter(execution=execution).delete()
    execution.input = input
    execution.context = copy_json(input)
    execution.fanouts = {}
    execution.queue = queue or definition.queue
    execution.priority = priority
    execution.scheduled_at = run_at
    if definition.timeout is not None:
        execution.deadline_at = run_at + timedelta(seconds=definition.timeout)
    begin(execution, definition, run_at=run_at, using=using)
