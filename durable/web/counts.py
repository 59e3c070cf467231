"""The execution list's counts per status: over the list's filters other than the status,
so they show how the rest splits and each one narrows the list to its status."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.http import QueryDict

from durable.models import ExecutionStatus, WorkflowExecution
from durable.web.filters import ExecutionFilter


@dataclass(frozen=True)
class StatusCount:
    status: str
    count: int
    query: str  # the list's query string with this status chosen
    chosen: bool


def status_counts(
    params: QueryDict, queryset: QuerySet[WorkflowExecution]
) -> tuple[int, list[StatusCount]]:
    """All executions matching the filters but the status, and how many have each status
    (in the order of `ExecutionStatus`, statuses with none left out)."""
    others = params.copy()
    chosen = others.pop("status", [""])[-1]
    for name in ("page", "workflow_id", "csrfmiddlewaretoken"):
        others.pop(name, None)
    filterset = ExecutionFilter(others, queryset=queryset)
    found = dict(
        filterset.qs.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = []
    for status in ExecutionStatus.values:
        if not found.get(status):
            continue
        query = others.copy()
        query["status"] = status
        counts.append(StatusCount(status, found[status], query.urlencode(), status == chosen))
    return sum(found.values()), counts


def all_statuses_query(params: QueryDict) -> str:
    """The list's query string without a status."""
    others = params.copy()
    for name in ("status", "page", "workflow_id", "csrfmiddlewaretoken"):
        others.pop(name, None)
    return others.urlencode()
