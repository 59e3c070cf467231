"""Dashboard controls of `durable.retry` (finished executions) and of resuming an
execution parked as `needs_attention`."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

import durable
from durable.dsl import registry
from durable.exceptions import DurableError, WorkflowNotFound
from durable.models import WorkflowExecution
from durable.web import access
from durable.web.lookups import execution_or_404

# Who may retry or resume: the same permission as cancelling.
RETRY_PERMISSION = access.CANCEL_PERMISSION


def step_choices(execution: WorkflowExecution) -> list[str]:
    """The steps and blocks a retry may start from: the root-level nodes of the code's
    definition (a step inside a block restarts its block)."""
    try:
        definition = registry.get(execution.workflow_name)
    except WorkflowNotFound:
        return []
    return [node.name for node in definition.nodes]


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
        messages.success(request, f"Retrying from {from_step or 'the failed step'}.")
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
        messages.success(request, "Resumed.")
    return redirect("durable:execution-detail", workflow_id=execution.workflow_id)
