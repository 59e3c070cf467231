"""The bulk-action views: confirm on the filtered list, then act on the confirmed ids."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from durable.web import access, bulk
from durable.web.filters import ExecutionFilter
from durable.web.lookups import checked_workflow_ids
from durable.web.views import _executions, _filter_query, _partial, _render


def _bulk_action(request: HttpRequest, name: str) -> bulk.BulkAction:
    action = bulk.ACTIONS.get(name)
    if action is None:
        raise Http404("no such bulk action")
    if not access.allowed(request.user, action.permission):
        raise PermissionDenied(f"you need the {action.permission} permission")
    return action


@require_GET
@access.staff_required()
def bulk_confirm(request: HttpRequest, action: str) -> HttpResponse:
    """How many executions matching the filters `action` applies to, and which: the form
    carries their ids, and acting takes those ids only (see durable.web.bulk). With
    `workflow_id`s (rows chosen on the list), those instead of the filters."""
    chosen = _bulk_action(request, action)
    context: dict[str, Any] = {"action": chosen, "query": _filter_query(request.GET)}
    selected = [i for i in request.GET.getlist("workflow_id") if i]
    if selected:
        return _confirm_selection(request, chosen, selected, context)
    filterset = ExecutionFilter(request.GET, queryset=_executions())
    if not filterset.is_valid():
        # An invalid filter is ignored by the list; here it would widen the set: refuse.
        context["errors"] = filterset.errors
        # htmx swaps 2xx responses only.
        status = 200 if _partial(request) else 400
        return _render(
            request, "durable/bulk.html", "durable/partials/bulk_confirm.html", context, status
        )
    candidates = bulk.eligible(chosen, filterset.qs).order_by("-created_at", "-id")
    context["total"] = candidates.count()
    context["executions"] = list(candidates[: bulk.LIMIT])
    return _render(request, "durable/bulk.html", "durable/partials/bulk_confirm.html", context)


def _confirm_selection(
    request: HttpRequest, chosen: bulk.BulkAction, selected: list[str], context: dict[str, Any]
) -> HttpResponse:
    """The confirmation for rows chosen on the list: those of them the action applies to."""
    context["selection"] = True
    if len(selected) > bulk.LIMIT:
        context["errors"] = {"selection": [f"choose at most {bulk.LIMIT} executions"]}
        status = 200 if _partial(request) else 400
        return _render(
            request, "durable/bulk.html", "durable/partials/bulk_confirm.html", context, status
        )
    chosen_rows = _executions().filter(workflow_id__in=selected)
    candidates = bulk.eligible(chosen, chosen_rows).order_by("-created_at", "-id")
    context["executions"] = list(candidates)
    context["total"] = len(context["executions"])
    context["not_eligible"] = len(set(selected)) - context["total"]
    return _render(request, "durable/bulk.html", "durable/partials/bulk_confirm.html", context)


@require_POST
@access.staff_required()
def bulk_perform(request: HttpRequest, action: str) -> HttpResponse:
    chosen = _bulk_action(request, action)
    posted = [i for i in request.POST.getlist("workflow_id") if i]
    ids = checked_workflow_ids(posted[: bulk.LIMIT + 1])
    query = _filter_query(QueryDict(request.POST.get("query", "")))
    back = reverse("durable:execution-list") + (f"?{query}" if query else "")
    if ids is None:
        # Not ids the confirmation sent: it lists existing executions only.
        messages.error(request, "Some of the ids are not workflow ids; nothing was done.")
        report = None
    elif not ids or len(ids) > bulk.LIMIT:
        messages.error(request, f"Choose between 1 and {bulk.LIMIT} executions.")
        report = None
    else:
        report = bulk.perform(chosen, ids, request.user)
        messages.success(request, report.summary())
        if report.skipped:
            detail = ", ".join(f"{w} ({why})" for w, why in list(report.skipped.items())[:10])
            more = len(report.skipped) - 10
            messages.warning(
                request, f"Skipped: {detail}" + (f" and {more} more" if more > 0 else "")
            )
    if not _partial(request):
        return redirect(back)
    response = render(request, "durable/partials/bulk_result.html", {"report": report})
    # The list's first page refetches itself on this event.
    response["HX-Trigger"] = "durable-refresh"
    return response


@require_GET
@access.staff_required()
def bulk_dismiss(request: HttpRequest) -> HttpResponse:
    """The empty confirmation region: "keep them" closes the confirmation (without htmx:
    back to the list)."""
    if not _partial(request):
        return redirect("durable:execution-list")
    response = HttpResponse('<div id="bulk"></div>')
    patch_vary_headers(response, ["HX-Request"])
    return response
