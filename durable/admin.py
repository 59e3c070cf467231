"""Admin registrations. Read-mostly views of executions, steps, inputs, schedules, queues."""

from __future__ import annotations

from django.contrib import admin

from durable.models import (
    PendingInput,
    QueueState,
    ScheduledWorkflow,
    StepExecution,
    WorkflowExecution,
)


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
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
    search_fields = ("workflow_id", "idempotency_key")
    readonly_fields = [f.name for f in WorkflowExecution._meta.fields]
    inlines = [StepExecutionInline]
    date_hierarchy = "created_at"


@admin.register(PendingInput)
class PendingInputAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("input_name", "step_name", "execution", "status", "timeout_at", "created_at")
    list_filter = ("status", "type")


@admin.register(ScheduledWorkflow)
class ScheduledWorkflowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "workflow_name",
        "cron_expression",
        "timezone",
        "enabled",
        "next_run_at",
        "last_run_at",
    )
    list_filter = ("enabled",)


@admin.register(QueueState)
class QueueStateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "paused", "updated_at")
