"""`DurableBackend`: a django-tasks backend whose tasks run as Durable workflow executions.

TASKS = {"default": {"BACKEND": "durable.tasks.DurableBackend",
                     "OPTIONS": {"max_attempts": 3, "backoff": "exponential", "base": 2}}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.apps import apps
from django.core import checks
from django.utils import timezone
from django_tasks import TaskResult
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task
from django_tasks.exceptions import InvalidTaskBackendError, InvalidTaskError
from django_tasks.signals import task_enqueued
from typing_extensions import ParamSpec

from durable.conf import durable_settings
from durable.dsl import Retry
from durable.tasks.workflows import ALIAS_PATTERN, MAX_NAME_LENGTH, definition_for, workflow_name

T = TypeVar("T")
P = ParamSpec("P")

# OPTIONS -> the retry policy of the backend's tasks. django-tasks has no retry API; by
# default a task runs once, as on django-tasks' own backends.
RETRY_OPTIONS = {"max_attempts": 1, "backoff": "exponential", "base": 2, "max_backoff": 3600}


class DurableBackend(BaseTaskBackend):
    supports_defer = True  # run_after -> the execution's scheduled_at
    supports_async_task = True  # async task functions run as async steps
    supports_get_result = True  # results live in the database, readable from any process
    supports_priority = True  # priority -> the execution's (and its steps') priority

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Without QUEUES, any queue in DURABLE["QUEUES"] is valid (checked on enqueue).
        if "QUEUES" not in params:
            self.queues = set()
        self.option_problems: list[str] = []
        options = self.options if isinstance(self.options, dict) else {}
        if not isinstance(self.options, dict):
            self.option_problems.append(f"OPTIONS must be a dict, got {self.options!r}")
        unknown = sorted(set(options) - set(RETRY_OPTIONS))
        if unknown:
            self.option_problems.append(
                f"unknown OPTIONS key(s) {', '.join(unknown)}; known: {', '.join(RETRY_OPTIONS)}"
            )
        self.retry = Retry(**{k: options.get(k, v) for k, v in RETRY_OPTIONS.items()})
        self.option_problems += self.retry.problems()
        if self.option_problems:
            self.retry = Retry(max_attempts=1)

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        if task.run_after is not None and timezone.is_naive(task.run_after):
            raise InvalidTaskError("run_after must be an aware datetime.")
        queues = durable_settings.queue_names()
        if task.queue_name not in queues:
            # As durable.start() refuses it: no worker would ever run the task.
            raise InvalidTaskError(
                f"Queue {task.queue_name!r} is not configured in DURABLE['QUEUES'] "
                f"(configured: {', '.join(queues)}); no worker would run it."
            )
        if len(workflow_name(self.alias, task.module_path)) > MAX_NAME_LENGTH:
            raise InvalidTaskError(
                f"The task path {task.module_path!r} is too long to name a Durable workflow "
                f"({MAX_NAME_LENGTH} characters with the backend alias)."
            )

    def enqueue(
        self,
        task: Task[P, T],
        args: P.args,  # type: ignore[valid-type]
        kwargs: P.kwargs,  # type: ignore[valid-type]
    ) -> TaskResult[T]:
        from durable import api
        from durable.tasks.results import to_task_result

        self.validate_task(task)
        if self.option_problems:
            raise InvalidTaskBackendError(
                f"TASKS[{self.alias!r}]: {'; '.join(self.option_problems)}"
            )
        workflow_id = api.start(
            definition_for(self, task),
            {"args": list(args), "kwargs": dict(kwargs)},
            queue=task.queue_name,
            priority=task.priority,
            scheduled_at=task.run_after,
        )
        result: TaskResult[T] = to_task_result(api.get_execution(workflow_id), [], task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any]:
        from durable.tasks.results import attempts_of, load_execution, task_of, to_task_result

        execution = load_execution(self.alias, result_id)
        return to_task_result(execution, attempts_of(execution), task_of(execution))

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        yield from super().check(**kwargs)
        where = f"TASKS[{self.alias!r}]"
        if not apps.is_installed("durable"):
            yield checks.Error(
                f"{where} uses DurableBackend, but Durable is not installed.",
                hint="Insert 'durable' in INSTALLED_APPS.",
                id="durable.E040",
            )
        for problem in self.option_problems:
            yield checks.Error(f"{where}: {problem}.", id="durable.E041")
        missing = sorted(self.queues - set(durable_settings.queue_names()))
        if missing:
            yield checks.Error(
                f"{where} lists queue(s) {', '.join(missing)} that DURABLE['QUEUES'] does not "
                "configure; no worker would run their tasks.",
                hint=f"configured: {', '.join(durable_settings.queue_names())}",
                id="durable.E042",
            )
        if not ALIAS_PATTERN.fullmatch(self.alias):
            yield checks.Error(
                f"{where}: the alias names Durable workflows, so it must be 1 to 50 letters, "
                "digits, '_', '.' or '-'.",
                id="durable.E043",
            )
