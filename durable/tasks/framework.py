"""The Tasks framework this project's Django has, chosen once: Django's own `django.tasks`
on Django 6.0 and later, the `django-tasks` backport on Django 5.2.

Every other module of `durable.tasks` takes the framework's classes, exceptions and signals
from here, so a task made with `@django.tasks.task` is run, validated and reported with
Django's own `Task`, `TaskResult`, `InvalidTask`... and never a look-alike. Code that must
run on both (a reusable app, Durable's tests) can import `task` and the rest from here too.

The backport renamed two exceptions after 0.12 (`InvalidTaskError` -> `InvalidTask`,
`InvalidTaskBackendError` -> `InvalidTaskBackend`, as Django names them) without aliases;
both spellings are accepted. Type checking always sees Django's own module (django-stubs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import django

# Django 6.0 ships the Tasks framework; the backport is for the releases before it.
NATIVE = django.VERSION >= (6, 0)

if TYPE_CHECKING or NATIVE:
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, TaskError
    from django.tasks.exceptions import (
        InvalidTask,
        InvalidTaskBackend,
        TaskResultDoesNotExist,
        TaskResultMismatch,
    )
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:
    from django_tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks import exceptions as _exceptions
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task, TaskError
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

    InvalidTask = getattr(_exceptions, "InvalidTask", None) or _exceptions.InvalidTaskError
    InvalidTaskBackend = (
        getattr(_exceptions, "InvalidTaskBackend", None) or _exceptions.InvalidTaskBackendError
    )
    TaskResultDoesNotExist = _exceptions.TaskResultDoesNotExist
    TaskResultMismatch = _exceptions.TaskResultMismatch

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "NATIVE",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultMismatch",
    "TaskResultStatus",
    "default_task_backend",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
