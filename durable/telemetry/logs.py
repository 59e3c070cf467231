"""What log records and Sentry events made inside a step carry: the run's ids.

Every record created while a step attempt runs gets `durable_workflow_id`, `durable_step`
and `durable_attempt` attributes (a JSON formatter such as python-json-logger or
structlog's `ExtraAdder` picks them up like any `extra`), whichever logger made it and
whether or not Durable stores it. They are set by a log record factory, which chains the
factory found when it was installed (as the logging documentation recommends), so it
coexists with others installed the same way.

When sentry-sdk is initialised, the step runs in a Sentry scope of its own tagged with the
same ids, so the events it sends (from its logging integration or `capture_exception`)
name the run.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepIds:
    workflow_id: str
    step: str
    attempt: int


current_ids: ContextVar[StepIds | None] = ContextVar("durable_step_ids", default=None)
# The attributes a record gets: JSON formatters and log shippers look for these names.
ATTRIBUTES = ("durable_workflow_id", "durable_step", "durable_attempt")

_install_lock = threading.Lock()
_previous_factory: Callable[..., logging.LogRecord] | None = None


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    assert _previous_factory is not None
    record = _previous_factory(*args, **kwargs)
    ids = current_ids.get()
    if ids is not None:
        record.durable_workflow_id = ids.workflow_id
        record.durable_step = ids.step
        record.durable_attempt = ids.attempt
    return record


def install() -> None:
    """Install the record factory (once per process)."""
    global _previous_factory
    if _previous_factory is not None:
        return
    with _install_lock:
        if _previous_factory is None:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_record_factory)


@contextmanager
def step_ids(ids: StepIds) -> Iterator[None]:
    """Records made (and Sentry events sent) in the block carry `ids`."""
    install()
    token = current_ids.set(ids)
    try:
        with _sentry_scope(ids):
            yield
    finally:
        current_ids.reset(token)


@contextmanager
def _sentry_scope(ids: StepIds) -> Iterator[None]:
    # Only when the application imported and initialised sentry-sdk: never imported here.
    sentry = sys.modules.get("sentry_sdk")
    if sentry is None or not sentry.get_client().is_active():
        yield
        return
    with sentry.new_scope() as scope:
        scope.set_tag("durable.workflow_id", ids.workflow_id)
        scope.set_tag("durable.step", ids.step)
        scope.set_tag("durable.attempt", str(ids.attempt))
        yield
