"""One built-in workflow per task: a single step that calls the task function.

Its name is `task:<backend alias>:<task module path>`, so the dashboard, the admin and
`get_metrics` show (and group by) the task. The definition is made from that name wherever
it is first needed (registry resolver), so workers need no module listed: a worker imports
the task function by its path, and takes the retry policy from its own `TASKS` settings.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.utils.module_loading import import_string

from durable.dsl import Definition, Retry, Workflow, registry, step
from durable.dsl.retry import Backoff
from durable.exceptions import NonRetryable, WorkflowNotFound
from durable.flow.context import Context
from durable.tasks.framework import InvalidTaskBackend, Task, TaskContext, task_backends
from durable.tasks.values import exact_json

if TYPE_CHECKING:
    from durable.tasks.backend import DurableBackend

PREFIX = "task:"
# What a backend alias may be: it is part of a workflow name (`[\w.:-]`, `:` separates).
ALIAS_PATTERN = re.compile(r"[\w.-]{1,50}")
MAX_NAME_LENGTH = 200  # WorkflowExecution.workflow_name
RETRY_ATTRIBUTE = "__durable_retry__"
STEP_NAME = "run"


def workflow_name(alias: str, task_path: str) -> str:
    return f"{PREFIX}{alias}:{task_path}"


def parse_name(name: str) -> tuple[str, str]:
    """`task:<alias>:<path>` -> (alias, path)."""
    alias, _, path = name.removeprefix(PREFIX).partition(":")
    return alias, path


class TaskWorkflow(Workflow):
    """Base of the per-task workflows; subclasses are made by `definition_for`."""

    abstract = True
    backend_alias: str
    task: Task[Any, Any]


def retry(
    *,
    max_attempts: int = 3,
    backoff: Backoff = "exponential",
    base: float = 2,
    max_backoff: float = 3600,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Per-task retry policy, overriding the backend's OPTIONS. Put it under `@task`:

    @task()
    @retry(max_attempts=5, backoff="constant", base=10)
    def sync_inventory(): ...
    """
    policy = Retry(max_attempts=max_attempts, backoff=backoff, base=base, max_backoff=max_backoff)
    problems = policy.problems()
    if problems:
        raise ValueError(f"invalid retry policy: {'; '.join(problems)}")

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(func, Task):
            raise TypeError("@retry(...) goes under @task, on the function itself")
        setattr(func, RETRY_ATTRIBUTE, policy)
        return func

    return mark


def retry_for(backend: DurableBackend, task: Task[Any, Any]) -> Retry:
    policy = getattr(task.func, RETRY_ATTRIBUTE, None)
    return policy if isinstance(policy, Retry) else backend.retry


def definition_for(backend: DurableBackend, task: Task[Any, Any]) -> Definition:
    """The workflow that runs `task` on `backend`, made (or remade, when its retry policy
    changed) and registered on first use."""
    name = workflow_name(backend.alias, task.module_path)
    policy = retry_for(backend, task)
    existing = registry.find(name)
    if existing is not None and issubclass(existing.workflow_class, TaskWorkflow):
        made = existing.workflow_class.task
        current = existing.retry_for(existing.step(STEP_NAME))
        if (made.func, made.takes_context, current) == (task.func, task.takes_context, policy):
            return existing
    definition = _make(name, backend.alias, task, policy)
    problem = registry.register(definition)
    if problem:
        raise WorkflowNotFound(f"cannot register the workflow of {task.module_path}: {problem}")
    return definition


def _make(name: str, alias: str, task: Task[Any, Any], policy: Retry) -> Definition:
    # Async tasks run as async steps on the worker's event loop, except those that take a
    # context: building it reads the database, which the event loop thread may not do.
    if iscoroutinefunction(task.func) and not task.takes_context:
        run = _async_step(task)
    else:
        run = _sync_step(task)
    run.__name__ = run.__qualname__ = STEP_NAME

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(
            name=name,
            abstract=False,
            queue=task.queue_name,
            backend_alias=alias,
            task=task,
            __module__=__name__,
            __qualname__=f"TaskWorkflow[{name}]",
        )
        namespace[STEP_NAME] = step(retry=policy)(run)

    cls = types.new_class(f"TaskWorkflow[{name}]", (TaskWorkflow,), {}, body)
    return cls.definition()  # type: ignore[attr-defined, no-any-return]


def _sync_step(task: Task[Any, Any]) -> Callable[..., Any]:
    func = task.func
    if iscoroutinefunction(func):
        # Built in this worker thread (the ORM may not be used on the event loop), so the
        # coroutine runs on a loop of its own.
        func = async_to_sync(func)

    def run(self: TaskWorkflow, ctx: Context) -> Any:
        args, kwargs = _arguments(ctx)
        if task.takes_context:
            return _return_value(func(_task_context(self, ctx), *args, **kwargs))
        return _return_value(func(*args, **kwargs))

    return run


def _async_step(task: Task[Any, Any]) -> Callable[..., Any]:
    func: Callable[..., Any] = task.func

    async def run(self: TaskWorkflow, ctx: Context) -> Any:
        args, kwargs = _arguments(ctx)
        return _return_value(await func(*args, **kwargs))

    return run


def _return_value(value: Any) -> Any:
    """What the task returned, as Django stores it; a value it refuses fails the task for good
    (with Django's TypeError), since another attempt would return the same kind of value."""
    try:
        return exact_json(value, "the task's return value")
    except (TypeError, ValueError) as exc:
        raise NonRetryable(exc) from exc


def _arguments(ctx: Context) -> tuple[list[Any], dict[str, Any]]:
    data = ctx.input if isinstance(ctx.input, dict) else {}
    return list(data.get("args") or []), dict(data.get("kwargs") or {})


def _task_context(workflow: TaskWorkflow, ctx: Context) -> TaskContext[Any, Any]:
    from durable.tasks.results import load_result

    return TaskContext(task_result=load_result(workflow.backend_alias, ctx.workflow_id))


def resolve(name: str) -> Definition:
    """Registry resolver: the definition behind a `task:` workflow name."""
    alias, path = parse_name(name)
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend:
        raise WorkflowNotFound(f"{name}: no TASKS backend {alias!r} in this process") from None
    from durable.tasks.backend import DurableBackend

    if not isinstance(backend, DurableBackend):
        raise WorkflowNotFound(f"{name}: TASKS backend {alias!r} is not a DurableBackend")
    return definition_for(backend, load_task(path))


def load_task(path: str) -> Task[Any, Any]:
    """The Task at `path`; only Task objects may be run (a stored path is data)."""
    try:
        task = import_string(path)
    except ImportError as exc:
        raise WorkflowNotFound(f"cannot import task {path!r}: {exc}") from None
    if not isinstance(task, Task):
        raise WorkflowNotFound(f"{path!r} is not a Task of Django's Tasks framework")
    return task


def install() -> None:
    from durable.tasks import signals

    registry.add_resolver(PREFIX, resolve)
    signals.connect()
