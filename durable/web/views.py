"""The dashboard's views. Full pages for normal requests, partials for HTMX requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

import durable.api
import durable.queues
from durable.conf import durable_settings
from durable.dsl import registry
from durable.exceptions import DurableError
from durable.models import PendingInput, WorkflowExecution
from durable.web import access, bulk, history, restart
from durable.web.charts import Point, bar_chart, hbar_chart
from durable.web.counts import all_statuses_query, status_counts
from durable.web.filters import ExecutionFilter
from durable.web.forms import (
    PendingInputForm,
    SendEventForm,
    StartWorkflowForm,
    stale_input_message,
)
from durable.web.lineage import lineage
from durable.web.live import page_digest
from durable.web.lookups import execution_or_404
from durable.web.presenters import execution_view, with_progress

PAGE_SIZE = 25
# Regions of the execution page that hold forms: rendered over HTTP (they need the
# request for the CSRF token and permissions); the consumer asks the page to refetch them.
REQUEST_REGIONS = ("inputs", "controls")


def _partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request  # type: ignore[union-attr]


def _render(
    request: HttpRequest, full: str, partial: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    response = render(request, partial if _partial(request) else full, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _filter_query(query: QueryDict) -> str:
    """The list's filters as a query string, without the page number."""
    filters = query.copy()
    for name in ("page", "workflow_id", "csrfmiddlewaretoken"):
        filters.pop(name, None)
    return filters.urlencode()


def _executions() -> QuerySet[WorkflowExecution]:
    return WorkflowExecution.objects.using(durable_settings.DATABASE)


@require_GET
@access.staff_required()
def execution_list(request: HttpRequest) -> HttpResponse:
    filterset = ExecutionFilter(request.GET, queryset=_executions().order_by("-created_at", "-id"))
    page = Paginator(filterset.matching(), PAGE_SIZE).get_page(request.GET.get("page"))
    with_progress(page.object_list)
    total, counts = status_counts(request.GET, _executions())
    context = {
        "filter": filterset,
        "filter_errors": filterset.rejected(),
        "status_total": total,
        "status_counts": counts,
        "all_statuses_query": all_statuses_query(request.GET),
        "page": page,
        "bulk_actions": bulk.allowed(request.user),
        "filter_query": _filter_query(request.GET),
        "rendered_at": timezone.now().isoformat(),
        "start_form": StartWorkflowForm(),
        "can_start": access.allowed(request.user, access.START_PERMISSION),
    }
    return _render(
        request,
        "durable/execution_list.html",
        "durable/partials/execution_table.html",
        context,
        # htmx swaps 2xx responses only: a partial with rejected filters is still a 200.
        status=400 if context["filter_errors"] and not _partial(request) else 200,
    )


@require_POST
@access.staff_required(access.START_PERMISSION)
def start_workflow(request: HttpRequest) -> HttpResponse:
    form = StartWorkflowForm(request.POST)
    if form.is_valid():
        try:
            wid = durable.api.start(
                form.cleaned_data["workflow"],
                form.cleaned_data["input"],
                queue=form.cleaned_data["queue"] or None,
            )
        except (DurableError, TypeError, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            history.record(execution_or_404(wid), "started", request.user)
            messages.success(request, f"Started {form.cleaned_data['workflow']}.")
            if _partial(request):
                return HttpResponseClientRedirect(
                    reverse("durable:execution-detail", kwargs={"workflow_id": wid})
                )
            return redirect("durable:execution-detail", workflow_id=wid)
    if _partial(request):
        # htmx swaps 2xx responses only: the form with its errors, in place.
        return render(request, "durable/partials/start_form.html", {"start_form": form})
    filterset = ExecutionFilter({}, queryset=_executions().order_by("-created_at", "-id"))
    context = {
        "filter": filterset,
        "page": Paginator(filterset.qs, PAGE_SIZE).get_page(1),
        "start_form": form,
        "can_start": True,
    }
    return render(request, "durable/execution_list.html", context, status=400)


def _execution(workflow_id: str) -> WorkflowExecution:
    return execution_or_404(workflow_id)


def page_context(request: HttpRequest, execution: WorkflowExecution) -> dict[str, Any]:
    view = execution_view(execution, payloads=access.sees_payloads(request.user))
    entries = history.history(execution, view.attempts, payloads=not view.payloads_hidden)
    # The socket's first frame is the clock alone when the page is still up to date.
    digest = page_digest(view, entries)
    return {
        "view": view,
        "history": entries,
        "execution": execution,
        "ws_path": f"/ws/durable/executions/{execution.workflow_id}/?v={digest}",
        "lineage": lineage(execution),
        **region_context(request, execution),
    }


def region_context(
    request: HttpRequest,
    execution: WorkflowExecution,
    forms: dict[int, PendingInputForm] | None = None,
) -> dict[str, Any]:
    pending = PendingInput.objects.using(durable_settings.DATABASE).filter(
        execution=execution, status=PendingInput.Status.PENDING
    )
    forms = forms or {}
    return {
        "execution": execution,
        "inputs": [(p, forms.get(p.pk) or PendingInputForm(p)) for p in pending],
        "can_respond": access.allowed(request.user, access.RESPOND_PERMISSION),
        "can_cancel": access.allowed(request.user, access.CANCEL_PERMISSION),
        "retry_steps": restart.step_choices(execution),
        "retry_default": restart.retry_default(execution),
        "can_send_event": access.allowed(request.user, access.SEND_EVENT_PERMISSION),
        "event_form": SendEventForm(),
    }


@require_GET
@access.staff_required()
def execution_detail(request: HttpRequest, workflow_id: str) -> HttpResponse:
    execution = _execution(workflow_id)
    return _render(
        request,
        "durable/execution_detail.html",
        "durable/partials/execution_body.html",
        page_context(request, execution),
    )


@require_GET
@access.staff_required()
def execution_region(request: HttpRequest, workflow_id: str, region: str) -> HttpResponse:
    """One form-holding region of the execution page, refetched when it changes."""
    if region not in REQUEST_REGIONS:
        raise Http404("no such region")
    execution = _execution(workflow_id)
    response = render(
        request, f"durable/partials/{region}.html", region_context(request, execution)
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
@access.staff_required(access.CANCEL_PERMISSION)
def cancel_execution(request: HttpRequest, workflow_id: str) -> HttpResponse:
    execution = execution_or_404(workflow_id)
    reason = f"cancelled by {request.user}"
    try:
        durable.api.cancel(execution.workflow_id, reason=reason)
    except (DurableError, ValueError) as exc:
        messages.error(request, f"Could not cancel: {exc}")
    else:
        history.record(execution, "cancelled", request.user, reason=reason)
        messages.success(request, "Cancelled.")
    return redirect("durable:execution-detail", workflow_id=execution.workflow_id)


@require_POST
@access.staff_required(access.SEND_EVENT_PERMISSION)
def send_event(request: HttpRequest, workflow_id: str) -> HttpResponse:
    execution = _execution(workflow_id)
    form = SendEventForm(request.POST)
    if form.is_valid():
        try:
            durable.api.send_event(
                execution.workflow_id, form.cleaned_data["event"], form.cleaned_data["payload"]
            )
        except (DurableError, TypeError, ValueError) as exc:
            messages.error(request, f"Could not send the event: {exc}")
        else:
            history.record(execution, "sent_event", request.user, event=form.cleaned_data["event"])
            messages.success(request, f"Sent event {form.cleaned_data['event']!r}.")
    else:
        messages.error(request, f"Could not send the event: {form.errors.as_text()}")
    return redirect("durable:execution-detail", workflow_id=execution.workflow_id)


@require_POST
@access.staff_required(access.RESPOND_PERMISSION)
def respond(request: HttpRequest, workflow_id: str, input_pk: int) -> HttpResponse:
    execution = _execution(workflow_id)
    pending = (
        PendingInput.objects.using(durable_settings.DATABASE)
        .filter(pk=input_pk, execution=execution)
        .first()
    )
    if pending is None or pending.status != PendingInput.Status.PENDING:
        # A form left open (the live page's socket gone) after the input was answered,
        # timed out or cancelled: say so on the page, which shows the current state.
        messages.error(request, stale_input_message(pending))
        if _partial(request):
            return _render(
                request,
                "durable/execution_detail.html",
                "durable/partials/execution_body.html",
                page_context(request, execution),
            )
        return redirect("durable:execution-detail", workflow_id=execution.workflow_id)
    form = PendingInputForm(pending, request.POST)
    if form.is_valid():
        try:
            durable.api.provide_input(
                execution.workflow_id, pending.input_name, form.response(), user=request.user
            )
        except ValidationError as exc:
            form.add_validation_error(exc)
        except DurableError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Answered {pending.input_name!r}.")
            return redirect("durable:execution-detail", workflow_id=execution.workflow_id)
    context = page_context(request, execution)
    context.update(region_context(request, execution, {pending.pk: form}))
    # htmx swaps 2xx responses only: it gets the page body with the form's errors.
    return _render(
        request,
        "durable/execution_detail.html",
        "durable/partials/execution_body.html",
        context,
        status=200 if _partial(request) else 400,
    )


@require_GET
@access.staff_required()
def metrics(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = now - timedelta(hours=24)
    counts = dict(
        _executions()
        .filter(created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("id"))
        .values_list("hour", "n")
    )
    first = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [first + timedelta(hours=i) for i in range(24)]
    per_hour = [Point(h.strftime("%H:00"), counts.get(h, 0)) for h in hours]
    names = sorted(
        {d.name for d in registry.all_definitions()}
        | set(_executions().order_by().values_list("workflow_name", flat=True).distinct())
    )
    rows = []
    for name in names:
        try:
            stats = durable.api.get_metrics(name, period="last_24_hours")
        except DurableError:
            continue
        rows.append({"name": name, **stats})
    success = [
        Point(r["name"], round(100 * r["success_rate"], 1))
        for r in rows
        if r["success_rate"] is not None
    ]
    p95 = [Point(r["name"], r["p95_duration_ms"]) for r in rows if r["p95_duration_ms"] is not None]
    queues = [{"name": q, **durable.queues.get_stats(q)} for q in durable_settings.queue_names()]
    depth = [Point(q["name"], q["pending"] + q["running"]) for q in queues]
    context = {
        "rows": rows,
        "queues": queues,
        "per_hour_chart": bar_chart(per_hour, title="Executions per hour"),
        "success_chart": hbar_chart(success, maximum=100, unit="%"),
        "p95_chart": hbar_chart(p95, unit=" ms"),
        "depth_chart": hbar_chart(depth),
    }
    return _render(request, "durable/metrics.html", "durable/partials/metrics_body.html", context)
