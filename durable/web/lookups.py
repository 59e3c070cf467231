"""The rows a dashboard URL names, or a 404 that says why: an id no execution can have (a
NUL, 10,000 characters) never reaches the database, whose error would be a 500."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from durable import arguments
from durable.conf import durable_settings
from durable.exceptions import ExecutionNotFound
from durable.models import WorkflowExecution


def execution_or_404(workflow_id: str) -> WorkflowExecution:
    try:
        checked = arguments.workflow_id(workflow_id)
    except ExecutionNotFound as exc:
        raise Http404(str(exc)) from None
    return get_object_or_404(
        WorkflowExecution.objects.using(durable_settings.DATABASE), workflow_id=checked
    )


def checked_workflow_ids(values: list[str]) -> list[str] | None:
    """The ids of a posted form, or None if any of them cannot be an execution's."""
    try:
        return [arguments.workflow_id(value) for value in values]
    except ExecutionNotFound:
        return None
