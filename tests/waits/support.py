"""Helpers for the waiting tests: what is stored about an execution, and its parked tasks."""

from __future__ import annotations

from typing import Any

import durable
from durable.models import (
    PendingInput,
    StepExecution,
    Task,
    WorkflowEvent,
    WorkflowExecution,
)


def stored(workflow_id: str) -> dict[str, Any]:
    """Every row about one execution, to prove that a refused call changed nothing."""
    rows = {"execution__workflow_id": workflow_id}
    return {
        "execution": WorkflowExecution.objects.filter(workflow_id=workflow_id).values().get(),
        "tasks": list(Task.objects.filter(**rows).order_by("id").values()),
        "steps": list(StepExecution.objects.filter(**rows).order_by("id").values()),
        "inputs": list(PendingInput.objects.filter(**rows).order_by("id").values()),
        "events": list(WorkflowEvent.objects.filter(**rows).order_by("id").values()),
    }


def status(workflow_id: str) -> str:
    return durable.get_execution(workflow_id).status


def parked(workflow_id: str) -> list[Task]:
    return list(Task.objects.filter(execution__workflow_id=workflow_id, status="waiting"))


def the_input(workflow_id: str) -> PendingInput:
    (row,) = PendingInput.objects.filter(execution__workflow_id=workflow_id)
    return row


def events(workflow_id: str) -> list[WorkflowEvent]:
    return list(WorkflowEvent.objects.filter(execution__workflow_id=workflow_id).order_by("id"))
