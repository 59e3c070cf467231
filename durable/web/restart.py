"""Dashboard controls of `durable.retry` (finished executions) and of resuming an
execution parked as `needs_attention`."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

import durable
from durable.conf import durable_settings
from durable.dsl import registry
from durable.exceptions import DurableError, InvalidTransition, WorkflowNotFound
from durable.models import WorkflowExecution
from durable.store import restarts
from durable.web import access, history
from durable.web.lookups import execution_or_404

# Who may retry or resume: the same permission as cancelling.
RETRY_PERMISSION = access.CANCEL_PERMISSION


def step_choices(execution: WorkflowExecution) -> list[str]:
    """The steps and blocks a retry may start from: the root-level nodes of the code's
    definition (a step inside a block restarts its block); for a compensated run, those
    up to its first compensated step (a later start would leave undone work undone)."""
    try:
        definition = registry.get(execution.workflow_name)
    except WorkflowNotFound:
        return []
    names = [node.name for node in definition.nodes]
    compensated = _first_compensated(execution)
    return names[: names.index(compensated) + 1] if compensated in names else names


def retry_default(execution: WorkflowExecution) -> str:
    """Where a retry without a step starts, in words."""
    compensated = _first_compensated(execution)
    if compensated is not None:
        return f"the first compensated step ({compensated})"
    if execution.status == "cancelled":
        return "the step it stopped at"
    return "the failed step"


def _first_compensated(execution: WorkflowExecution) -> str | None:
    try:
        definition = registry.get(execution.workflow_name)
        return restarts.first_compensated(execution, definition, durable_settings.DATABASE)
    except (WorkflowNotFound, InvalidTransition):
        return None  # the retry itself says why it cannot run


def _execution(workflow_id: str) -> WorkflowExecution:
    return execution_or_404(workflow_id)


@require_POST
@access.staff_required(RETRY_PERMISSION)
def retry_execution(request: HttpRequest, workflow_id: str) -> HttpResponse:
    execution = _execution(workflow_id)
    from_step = request.POST.get("from_step") or None
    try:
        durable.api.retry(execution.workflow_id, from_step=from_step)
    except (DurableError, ValueError, TypeError) as exc:
        messages.error(request, f"Could not retry: {exc}")
    else:
        history.record(
            execution,
            "retried",
            request.user,
            from_step=from_step or "",
            previous_status=execution.status,
        )
        messages.success(request, f"Retrying from {from_step or retry_default(execution)}.")
    return redirect("durable:execution-detail", workflow_id=execution.workflow_id)


@require_POST
@access.staff_required(RETRY_PERMISSION)
def resume_execution(request: HttpRequest, workflow_id: str) -> HttpResponse:
    execution = _execution(workflow_id)
    try:
        durable.api.resume(execution.workflow_id)
    except (DurableError, ValueError) as exc:
        messages.error(request, f"Could not resume: {exc}")
    else:
        history.record(execution, "resumed", request.user)
        messages.success(request, "Resumed.")
    return redirect("durable:execution-detail", workflow_id=execution.workflow_id)
