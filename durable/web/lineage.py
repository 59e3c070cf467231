"""Parent and child workflows of an execution, the runs it continues or is continued by
(`ctx.continue_as_new`), and the run it was forked from and its forks (`durable.fork`),
for its dashboard page."""

from __future__ import annotations

from dataclasses import dataclass, field

from durable.conf import durable_settings
from durable.models import WorkflowExecution

# A page lists this many children at most (a fan-out may start thousands).
MAX_CHILDREN = 100


@dataclass
class Lineage:
    parent: WorkflowExecution | None
    children: list[WorkflowExecution]
    more_children: int  # beyond MAX_CHILDREN
    continued_from: WorkflowExecution | None = None
    continued_as: WorkflowExecution | None = None
    forked_from: WorkflowExecution | None = None
    forks: list[WorkflowExecution] = field(default_factory=list)


def lineage(execution: WorkflowExecution) -> Lineage:
    executions = WorkflowExecution.objects.using(durable_settings.DATABASE)
    parent = executions.filter(pk=execution.parent_id).first() if execution.parent_id else None
    children = executions.filter(parent_id=execution.pk).order_by("id")
    shown = list(children[:MAX_CHILDREN])
    more = children.count() - len(shown) if len(shown) == MAX_CHILDREN else 0
    before = (
        executions.filter(pk=execution.continued_from_id).first()
        if execution.continued_from_id
        else None
    )
    after = executions.filter(continued_from_id=execution.pk).first()
    source = (
        executions.filter(pk=execution.forked_from_id).first() if execution.forked_from_id else None
    )
    forks = list(executions.filter(forked_from_id=execution.pk).order_by("id")[:MAX_CHILDREN])
    return Lineage(parent, shown, more, before, after, source, forks)
