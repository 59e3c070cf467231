"""Creating the child workflows a step run started (`ctx.start_child`), in the run's
checkpoint transaction: a child exists exactly when the run that started it is recorded.
A re-run of the step names the same children (durable/engine/children.py), so those that
exist already are skipped."""

from __future__ import annotations

from collections.abc import Sequence

from durable.dsl import registry
from durable.models import FINISHED_STATUSES, Task, WorkflowExecution
from durable.store.records import ChildStart
from durable.store.starts import Start, start_executions
from durable.telemetry import tracing


def start_children(task: Task, starts: Sequence[ChildStart], using: str) -> None:
    if not starts:
        return
    existing = set(
        WorkflowExecution.objects.using(using)
        .filter(workflow_id__in=[start.workflow_id for start in starts])
        .values_list("workflow_id", flat=True)
    )
    parent_priority, parent_id, parent_trace = (
        WorkflowExecution.objects.using(using)
        .filter(pk=task.execution_id)
        .values_list("priority", "workflow_id", "trace_context")
        .get()
    )
    # A child's spans join its parent's trace, under the parent's workflow span.
    trace_context = tracing.child_carrier(parent_id, parent_trace)
    by_workflow: dict[str, list[Start]] = {}
    for start in starts:
        if start.workflow_id in existing:
            continue
        by_workflow.setdefault(start.workflow_name, []).append(
            Start(
                start.input,
                queue=start.queue,
                priority=parent_priority if start.priority is None else start.priority,
                workflow_id=start.workflow_id,
                parent_id=task.execution_id,
                trace_context=trace_context,
            )
        )
    for name, batch in by_workflow.items():
        # Resolved by ctx.start_child() earlier in this run, in this process.
        start_executions(registry.get(name), batch, using=using)


def child_settled(parent_pk: int, workflow_id: str, using: str) -> bool:
    """Whether a wait on child `workflow_id` has nothing left to wait for: the child
    finished, or it is no child of the parent at all (the re-run then says so)."""
    return not (
        WorkflowExecution.objects.using(using)
        .filter(parent_id=parent_pk, workflow_id=workflow_id)
        .exclude(status__in=FINISHED_STATUSES)
        .exists()
    )
