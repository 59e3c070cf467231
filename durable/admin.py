"""Admin registrations: executions (cancel), pending inputs (answer them), schedules
(enable, disable, run now) and queues (pause, resume, stats)."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

import durable.api
import durable.queues
from durable.conf import durable_settings
from durable.exceptions import DurableError
from durable.models import (
    PendingInput,
    QueueState,
    ScheduledWorkflow,
    StepExecution,
    WorkflowExecution,
)
from durable.web import history
from durable.web.access import RESPOND_PERMISSION, sees_payloads
from durable.web.forms import PendingInputForm, stale_input_message
from durable.web.presenters import ENCRYPTED, error_text, pretty_json


class NoNulLookups:
    """PostgreSQL refuses a NUL in text (DataError, a 500): a list's filters or search with
    one are refused as the admin refuses any invalid filter (`?e=1`), and an object id with
    one finds nothing, as on other databases."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if any("\x00" in key or "\x00" in value for key, value in request.GET.items()):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        response: HttpResponse = super().changelist_view(  # type: ignore[misc]
            request, extra_context
        )
        return response

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        if "\x00" in object_id:
            return None
        return super().get_object(request, object_id, from_field)  # type: ignore[misc]


class StepExecutionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = StepExecution
    extra = 0
    can_delete = False
    fields = (
        "step",
        "scope_key",
        "kind",
        "attempt",
        "status",
        "started_at",
        "duration_ms",
        "error_summary",
        "log_lines",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error")
    def error_summary(self, row: StepExecution) -> str:
        return error_text(row.error)

    @admin.display(description="logs")
    def log_lines(self, row: StepExecution) -> str:
        if not row.logs:
            return ""
        return format_html(
            '<pre style="max-height:16em;overflow:auto;white-space:pre-wrap;margin:0">{}</pre>',
            format_html_join(
                "\n",
                "{} {} {}",
                (
                    (
                        str(line.get("timestamp", ""))[11:23],
                        line.get("level", ""),
                        line.get("message", ""),
                    )
                    for line in row.logs
                ),
            ),
        )


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(NoNulLookups, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "workflow_id",
        "workflow_name",
        "status",
        "queue",
        "current_step",
        "created_at",
        "duration_ms",
    )
    list_filter = ("status", "workflow_name", "queue", "created_at")
    search_fields = ("workflow_id", "idempotency_key", "parent__workflow_id")
    readonly_fields = [f.name for f in WorkflowExecution._meta.fields] + [
        "dashboard",
        "child_workflows",
    ]
    inlines = [StepExecutionInline]
    date_hierarchy = "created_at"
    actions = ["cancel_executions", "retry_executions"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if sees_payloads(request.user):
            return fields
        # Encrypted payloads show as "encrypted" to users without durable.view_payloads.
        return [f"{name}_hidden" if name in HIDDEN_PAYLOADS else name for name in fields]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        # Left out of the (read-only) form too, which would show them.
        return None if sees_payloads(request.user) else HIDDEN_PAYLOADS

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Executions are started by durable.start (the dashboard's start form), which
        # resolves the workflow and queues its first steps; a bare row would never run.
        return False

    @admin.display(description="dashboard")
    def dashboard(self, execution: WorkflowExecution) -> str:
        url = reverse("durable:execution-detail", kwargs={"workflow_id": execution.workflow_id})
        return format_html('<a href="{}">live graph, timeline and logs</a>', url)

    @admin.display(description="child workflows")
    def child_workflows(self, execution: WorkflowExecution) -> str:
        # Parents link through the `parent` field; children are listed (first 100) here.
        children = execution.children.order_by("id")[:100]
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> {} ({})',
            (
                (
                    reverse("admin:durable_workflowexecution_change", args=[child.pk]),
                    child.workflow_id,
                    child.workflow_name,
                    child.status,
                )
                for child in children
            ),
        )

    @admin.action(description="Cancel selected executions", permissions=["change"])
    def cancel_executions(
        self, request: HttpRequest, queryset: QuerySet[WorkflowExecution]
    ) -> None:
        cancelled, refused = 0, []
        for execution in queryset:
            reason = f"cancelled by {request.user}"
            try:
                durable.api.cancel(execution.workflow_id, reason=reason)
            except DurableError as exc:
                refused.append(f"{execution.workflow_id}: {exc}")
            else:
                history.record(execution, "cancelled", request.user, reason=reason)
                cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} execution(s).", messages.SUCCESS)
        for problem in refused:
            self.message_user(request, f"Not cancelled: {problem}", messages.WARNING)

    @admin.action(
        description="Retry from failed step (compensated: from the first compensated step)",
        permissions=["change"],
    )
    def retry_executions(self, request: HttpRequest, queryset: QuerySet[WorkflowExecution]) -> None:
        # Another step: the dashboard's execution page has a retry form with a step choice.
        retried, refused = 0, []
        for execution in queryset:
            try:
                durable.api.retry(execution.workflow_id)
            except (DurableError, ValueError) as exc:
                refused.append(f"{execution.workflow_id}: {exc}")
            else:
                history.record(execution, "retried", request.user, previous_status=execution.status)
                retried += 1
        if retried:
            self.message_user(request, f"Retrying {retried} execution(s).", messages.SUCCESS)
        for problem in refused:
            self.message_user(request, f"Not retried: {problem}", messages.WARNING)


# The execution columns the admin hides, with a codec, from users who may not see payloads.
HIDDEN_PAYLOADS = ("input", "context", "result", "fanouts")


def _hidden_payload(name: str) -> Any:
    @admin.display(description=name)
    def show(self: Any, execution: WorkflowExecution) -> str:
        return ENCRYPTED

    return show


for _name in HIDDEN_PAYLOADS:
    setattr(WorkflowExecutionAdmin, f"{_name}_hidden", _hidden_payload(_name))


@admin.register(PendingInput)
class PendingInputAdmin(NoNulLookups, admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only rows; the change page of a pending input holds its response form."""

    list_display = ("input_name", "step_name", "execution", "status", "timeout_at", "created_at")
    list_filter = ("status", "type")
    search_fields = ("execution__workflow_id", "input_name")
    change_form_template = "durable/admin/pendinginput_change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        names = [f.name for f in PendingInput._meta.fields]
        if sees_payloads(request.user):
            return names
        return ["response_hidden" if name == "response" else name for name in names]

    @admin.display(description="response")
    def response_hidden(self, pending: PendingInput) -> str:
        return ENCRYPTED

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return None if sees_payloads(request.user) else ("response",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A pending input is a step's open wait: deleting it would leave the workflow
        # waiting on an input nobody can answer. Answer it, or cancel the execution.
        if obj is not None and obj.status == PendingInput.Status.PENDING:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The bulk "delete selected" action asks here, not has_delete_permission(obj): a
        # reason in perms_needed makes the admin show it and refuse the deletion.
        pending = [str(p) for p in objs if p.status == PendingInput.Status.PENDING]
        if pending:
            perms_needed = {
                *perms_needed,
                f"pending inputs ({', '.join(pending[:10])}): answer them or cancel their "
                "execution instead",
            }
        return deleted, counts, perms_needed, protected

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        pending = self.get_object(request, object_id)
        if pending is not None and pending.status == PendingInput.Status.PENDING:
            self.message_user(
                request,
                f"{pending} is still awaited by its workflow, so it cannot be deleted: answer "
                "it, or cancel its execution.",
                messages.ERROR,
            )
            return HttpResponseRedirect(
                reverse("admin:durable_pendinginput_change", args=[pending.pk])
            )
        return super().delete_view(request, object_id, extra_context)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        pending = self.get_object(request, object_id) if object_id else None
        can_respond = request.user.has_perm(RESPOND_PERMISSION)
        form = None
        responding = request.method == "POST" and "_respond" in request.POST
        if responding and pending is not None and pending.status != PendingInput.Status.PENDING:
            # A form left open while someone else answered (or it timed out): say so on
            # the page, not with a bare 403 from the admin's change permission.
            self.message_user(request, stale_input_message(pending), messages.ERROR)
            return HttpResponseRedirect(request.path)
        if pending is not None and pending.status == PendingInput.Status.PENDING:
            if request.method == "POST" and "_respond" in request.POST:
                if not (can_respond and self.has_view_permission(request, pending)):
                    raise PermissionDenied
                form = PendingInputForm(pending, request.POST)
                if self._respond(request, pending, form):
                    return HttpResponseRedirect(request.path)
                # Show the page again with the errors (the admin would save a POST).
                request = copy.copy(request)
                request.method = "GET"
                request.POST = QueryDict()
            else:
                form = PendingInputForm(pending)
        context = {
            **(extra_context or {}),
            "respond_form": form,
            "can_respond": can_respond,
            "schema_json": pretty_json(
                {"fields": pending.fields, "choices": pending.choices} if pending else {}
            ),
        }
        return super().changeform_view(request, object_id, form_url, context)

    def _respond(self, request: HttpRequest, pending: PendingInput, form: PendingInputForm) -> bool:
        if not form.is_valid():
            return False
        try:
            durable.api.provide_input(
                pending.execution.workflow_id,
                pending.input_name,
                form.response(),
                user=request.user,
            )
        except ValidationError as exc:
            form.add_validation_error(exc)
            return False
        except DurableError as exc:
            form.add_error(None, str(exc))
            return False
        self.message_user(request, f"Answered {pending.input_name!r}.", messages.SUCCESS)
        return True


@admin.register(ScheduledWorkflow)
class ScheduledWorkflowAdmin(NoNulLookups, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "workflow_name",
        "cron_expression",
        "timezone",
        "queue",
        "enabled",
        "next_run_at",
        "last_run_at",
    )
    list_filter = ("enabled", "source")
    search_fields = ("name", "workflow_name")
    actions = ["enable", "disable", "run_now"]

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[ScheduledWorkflow]) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"Enabled {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[ScheduledWorkflow]) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, f"Disabled {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[ScheduledWorkflow]) -> None:
        for schedule in queryset:
            try:
                wid = durable.api.start(
                    schedule.workflow_name, schedule.input, queue=schedule.queue
                )
            except (DurableError, TypeError, ValueError) as exc:
                self.message_user(request, f"{schedule.name}: not started: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{schedule.name}: started {wid}.", messages.SUCCESS)


@admin.register(QueueState)
class QueueStateAdmin(NoNulLookups, admin.ModelAdmin):  # type: ignore[type-arg]
    """One row per configured queue, with its live counts."""

    list_display = ("name", "paused", "running", "pending", "concurrency", "updated_at")
    readonly_fields = ("name", "paused", "updated_at")
    actions = ["pause", "resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        using = durable_settings.DATABASE
        for name in durable_settings.queue_names():
            QueueState.objects.using(using).get_or_create(name=name)
        return super().changelist_view(request, extra_context)

    def _stat(self, state: QueueState, key: str) -> Any:
        try:
            return durable.queues.get_stats(state.name)[key]
        except ValueError:  # a queue no longer configured
            return "-"

    @admin.display(description="running")
    def running(self, state: QueueState) -> Any:
        return self._stat(state, "running")

    @admin.display(description="pending")
    def pending(self, state: QueueState) -> Any:
        return self._stat(state, "pending")

    @admin.display(description="concurrency")
    def concurrency(self, state: QueueState) -> Any:
        return self._stat(state, "concurrency")

    @admin.action(description="Pause selected queues", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[QueueState]) -> None:
        self._apply(request, queryset, durable.queues.pause, "Paused")

    @admin.action(description="Resume selected queues", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[QueueState]) -> None:
        self._apply(request, queryset, durable.queues.resume, "Resumed")

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[QueueState], change: Any, verb: str
    ) -> None:
        for state in queryset:
            try:
                change(state.name)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{verb} queue {state.name}.", messages.SUCCESS)
