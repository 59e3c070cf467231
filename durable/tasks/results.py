"""A task's execution and its attempts, read back as the Tasks framework's `TaskResult`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import SuspiciousOperation

from durable.conf import durable_settings
from durable.exceptions import WorkflowNotFound
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    StepExecution,
    StepStatus,
    WorkflowExecution,
)
from durable.tasks.framework import (
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)
from durable.tasks.workflows import PREFIX, load_task, parse_name


def load_result(alias: str, result_id: str) -> TaskResult[Any, Any]:
    """The result of a task enqueued on backend `alias`, as stored now."""
    execution = load_execution(alias, result_id)
    return to_task_result(execution, attempts_of(execution), task_of(execution))


def load_execution(alias: str, result_id: str) -> WorkflowExecution:
    """The execution of a task enqueued on backend `alias`, or TaskResultDoesNotExist."""
    try:
        return WorkflowExecution.objects.using(str(durable_settings.DATABASE)).get(
            workflow_id=str(result_id), workflow_name__startswith=f"{PREFIX}{alias}:"
        )
    except WorkflowExecution.DoesNotExist:
        raise TaskResultDoesNotExist(result_id) from None


def attempts_of(execution: WorkflowExecution) -> list[StepExecution]:
    return list(
        execution.steps.using(str(durable_settings.DATABASE))
        .filter(kind="step")
        .order_by("attempt", "id")
    )


def task_of(execution: WorkflowExecution) -> Task[Any, Any]:
    alias, path = parse_name(execution.workflow_name)
    try:
        task = load_task(path)
    except WorkflowNotFound as exc:
        # The stored path no longer names a task (renamed, removed): as the database backend
        # of django-tasks does, refuse to hand back something else.
        raise SuspiciousOperation(f"Task {execution.workflow_id}: {exc}") from None
    return task.using(
        priority=execution.priority,
        queue_name=execution.queue,
        run_after=execution.scheduled_at,
        backend=alias,
    )


def to_task_result(
    execution: WorkflowExecution, attempts: Sequence[StepExecution], task: Task[Any, Any]
) -> TaskResult[Any, Any]:
    finished = execution.status in FINISHED_STATUSES
    data = execution.input if isinstance(execution.input, dict) else {}
    result: TaskResult[Any, Any] = TaskResult(
        task=task,
        id=execution.workflow_id,
        status=status_of(execution, attempts),
        enqueued_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.completed_at if finished else None,
        last_attempted_at=attempts[-1].started_at if attempts else None,
        args=list(data.get("args") or []),
        kwargs=dict(data.get("kwargs") or {}),
        backend=task.backend,
        errors=[error_of(a.error) for a in attempts if a.status == StepStatus.FAILED and a.error],
        worker_ids=[a.worker_id for a in attempts],
    )
    if execution.status == ExecutionStatus.COMPLETED:
        object.__setattr__(result, "_return_value", execution.result)
    return result


def status_of(execution: WorkflowExecution, attempts: Sequence[StepExecution]) -> TaskResultStatus:
    if execution.status == ExecutionStatus.COMPLETED:
        return TaskResultStatus.SUCCESSFUL
    if execution.status in FINISHED_STATUSES:  # failed, cancelled
        return TaskResultStatus.FAILED
    if attempts and attempts[-1].status in (StepStatus.RUNNING, StepStatus.WAITING):
        return TaskResultStatus.RUNNING
    # Not started yet, or between a failed attempt and its retry.
    return TaskResultStatus.READY


def error_of(error: dict[str, Any]) -> TaskError:
    kind = str(error.get("type") or "Exception")
    # Durable names builtins bare ("ValueError"); the Tasks framework imports the path.
    path = kind if "." in kind else f"builtins.{kind}"
    traceback = error.get("traceback") or f"{kind}: {error.get('message', '')}\n"
    return TaskError(exception_class_path=path, traceback=str(traceback))
