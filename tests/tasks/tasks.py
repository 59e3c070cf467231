"""Task functions for the django-tasks backend tests (ported from django-tasks' own)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from durable.tasks import retry
from durable.tasks.framework import TaskContext, task


@task()
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task()
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
async def calculate_meaning_of_life_async() -> int:
    return 42


@task()
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task()
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task()
async def failing_task_async() -> None:
    raise ValueError("This async task failed")


@task()
def failing_task_system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task()
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value() -> Any:
    # Something which isn't JSON serializable.
    return lambda: True


@task()
def return_this(expression: str) -> Any:
    # The value is made in the task: arguments are held to the same rule.
    return eval(expression, {"inf": math.inf, "nan": math.nan})


@task()
def exit_task() -> None:
    sys.exit(1)


@task(takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
async def get_task_id_async(context: TaskContext) -> str:
    return context.task_result.id


@task(takes_context=True)
def context_status(context: TaskContext, attempt: int) -> str:
    assert context.attempt == attempt, (context.attempt, attempt)
    return str(context.task_result.status)


def _fail_until(counter: str, failures: int) -> int:
    """Count calls in a file (attempts may run in other processes); fail the first ones."""
    path = Path(counter)
    calls = int(path.read_text() or 0) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls <= failures:
        raise RuntimeError(f"failure {calls} of {failures}")
    return calls


@task()
def flaky(counter: str, failures: int) -> int:
    return _fail_until(counter, failures)


@task()
@retry(max_attempts=5, backoff="constant", base=0)
def flaky_with_own_retry(counter: str, failures: int) -> int:
    return _fail_until(counter, failures)


@task()
def record_order(label: str) -> str:
    return label
