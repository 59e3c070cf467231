"""`DurableBackend`: a Tasks backend whose tasks run as Durable workflow executions.

TASKS = {"default": {"BACKEND": "durable.tasks.DurableBackend",
                     "OPTIONS": {"max_attempts": 3, "backoff": "exponential", "base": 2}}}

`QUEUES` names the queues the backend accepts, each one of `DURABLE["QUEUES"]`. Without it,
or with an empty list, the backend accepts every queue of `DURABLE["QUEUES"]` and refuses any
other: Django reads an empty list as "any queue", but a task on a queue that no Durable
worker serves would never run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core import checks
from django.utils.translation import gettext as _

from durable.conf import durable_settings
from durable.dsl import Retry
from durable.tasks.framework import (
    BaseTaskBackend,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskResult,
    task_enqueued,
)
from durable.tasks.values import exact_json
from durable.tasks.workflows import ALIAS_PATTERN, MAX_NAME_LENGTH, definition_for, workflow_name

# OPTIONS -> the retry policy of the backend's tasks. Django's Tasks API has no retry API; by
# default a task runs once, as on Django's own backends.
RETRY_OPTIONS = {"max_attempts": 1, "backoff": "exponential", "base": 2, "max_backoff": 3600}


class DurableBackend(BaseTaskBackend):
    supports_defer = True  # run_after -> the execution's scheduled_at
    supports_async_task = True  # async task functions run as async steps
    supports_get_result = True  # results live in the database, readable from any process
    supports_priority = True  # priority -> the execution's (and its steps') priority

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # No QUEUES (or an empty list): the queues of DURABLE["QUEUES"], checked on use.
        self.queues = set(params.get("QUEUES") or ())
        self.option_problems: list[str] = []
        options = self.options if isinstance(self.options, dict) else {}
        if not isinstance(self.options, dict):
            self.option_problems.append(
                _("OPTIONS must be a dict, got %(options)r") % {"options": self.options}
            )
        unknown = sorted(set(options) - set(RETRY_OPTIONS))
        if unknown:
            self.option_problems.append(
                _("unknown OPTIONS key(s) %(unknown)s; known: %(known)s")
                % {"unknown": ", ".join(unknown), "known": ", ".join(RETRY_OPTIONS)}
            )
        self.retry = Retry(**{k: options.get(k, v) for k, v in RETRY_OPTIONS.items()})
        self.option_problems += self.retry.problems()
        if self.option_problems:
            self.retry = Retry(max_attempts=1)

    def validate_task(self, task: Task[Any, Any]) -> None:
        super().validate_task(task)
        queues = durable_settings.queue_names()
        if task.queue_name not in queues:
            # As durable.start() refuses it: no worker would ever run the task.
            raise InvalidTask(
                f"Queue {task.queue_name!r} is not configured in DURABLE['QUEUES'] "
                f"(configured: {', '.join(queues)}); no worker would run it."
            )
        if len(workflow_name(self.alias, task.module_path)) > MAX_NAME_LENGTH:
            raise InvalidTask(
                f"The task path {task.module_path!r} is too long to name a Durable workflow "
                f"({MAX_NAME_LENGTH} characters with the backend alias)."
            )

    def enqueue(
        self, task: Task[Any, Any], args: Iterable[Any], kwargs: dict[str, Any]
    ) -> TaskResult[Any, Any]:
        from durable import api
        from durable.tasks.results import to_task_result

        self.validate_task(task)
        if self.option_problems:
            raise InvalidTaskBackend(f"TASKS[{self.alias!r}]: {'; '.join(self.option_problems)}")
        data = {
            "args": exact_json(list(args), "the task's arguments"),
            "kwargs": exact_json(dict(kwargs), "the task's keyword arguments"),
        }
        workflow_id = api.start(
            definition_for(self, task),
            data,
            queue=task.queue_name,
            priority=task.priority,
            scheduled_at=task.run_after,
        )
        result = to_task_result(api.get_execution(workflow_id), [], task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        from durable.tasks.results import load_result

        return load_result(self.alias, result_id)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = list(super().check(**kwargs))
        where = f"TASKS[{self.alias!r}]"
        if not apps.is_installed("durable"):
            message = _("%(where)s uses DurableBackend, but Durable is not installed.")
            messages.append(
                checks.Error(
                    message % {"where": where},
                    hint=_("Insert 'durable' in INSTALLED_APPS."),
                    id="durable.E040",
                )
            )
        messages += [
            checks.Error(f"{where}: {problem}.", id="durable.E041")
            for problem in self.option_problems
        ]
        configured = durable_settings.queue_names()
        missing = sorted(self.queues - set(configured))
        if missing:
            message = _(
                "%(where)s lists queue(s) %(missing)s that DURABLE['QUEUES'] does not "
                "configure; no worker would run their tasks."
            )
            messages.append(
                checks.Error(
                    message % {"where": where, "missing": ", ".join(missing)},
                    hint=_("configured: %(queues)s") % {"queues": ", ".join(configured)},
                    id="durable.E042",
                )
            )
        if not ALIAS_PATTERN.fullmatch(self.alias):
            message = _(
                "%(where)s: the alias names Durable workflows, so it must be 1 to 50 "
                "letters, digits, '_', '.' or '-'."
            )
            messages.append(checks.Error(message % {"where": where}, id="durable.E043"))
        return messages
