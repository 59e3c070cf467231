"""Parent and child workflows of an execution, for its dashboard page."""

from __future__ import annotations

from dataclasses import dataclass

from durable.conf import durable_settings
from durable.models import WorkflowExecution

# A page lists this many children at most (a fan-out may start thousands).
MAX_CHILDREN = 100


@dataclass
class Lineage:
    parent: WorkflowExecution | None
    children: list[WorkflowExecution]
    more_children: int  # beyond MAX_CHILDREN


def lineage(execution: WorkflowExecution) -> Lineage:
    executions = WorkflowExecution.objects.using(durable_settings.DATABASE)
    parent = executions.filter(pk=execution.parent_id).first() if execution.parent_id else None
    children = executions.filter(parent_id=execution.pk).order_by("id")
    shown = list(children[:MAX_CHILDREN])
    more = children.count() - len(shown) if len(shown) == MAX_CHILDREN else 0
    return Lineage(parent, shown, more)
