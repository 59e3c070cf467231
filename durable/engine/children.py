"""The engine's side of `ctx.start_child` / `ctx.wait_for_child`: validating a start, naming
the child, and looking up how the children of an execution ended.

A child's id is derived from where it was started (parent, step run, attempt, call index),
so a re-run of the step (after a wait, or after a crash) computes the same id and the
checkpoint, which creates children that do not exist yet, creates nothing twice. A retry
(a new attempt) starts a new child. The child is created in the checkpoint transaction of
the run that started it: it exists exactly when that run's outcome is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from durable.conf import durable_settings
from durable.dsl import registry
from durable.flow.waits import ChildOutcome
from durable.models import FINISHED_STATUSES, WorkflowExecution
from durable.serialization import normalize
from durable.store.records import ChildStart

_NAMESPACE = uuid.UUID("5b0f7c1e-3f0e-4c41-9a4e-0c2d1ad7c6b1")


def child_id(parent_id: str, step: str, scope_key: str, attempt: int, index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{parent_id}/{step}/{scope_key}/{attempt}/{index}"))


def child_start(
    workflow_id: str, workflow: Any, input: Any, queue: str | None, priority: int | None
) -> ChildStart:
    """Check a start_child() call the way durable.start() checks its arguments."""
    definition = registry.resolve(workflow)
    if input is None:
        input = {}
    if not isinstance(input, Mapping):
        raise TypeError(f"child input must be a dict (a JSON object), got {type(input).__name__}")
    data = normalize(dict(input), "child input")
    if queue is not None and queue not in durable_settings.queue_names():
        raise ValueError(
            f"queue {queue!r} is not configured in DURABLE['QUEUES'] "
            f"(configured: {', '.join(durable_settings.queue_names())}); no worker would run it"
        )
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise TypeError(f"priority must be an int, got {priority!r}")
    return ChildStart(workflow_id, definition.name, data, queue, priority)


class Children:
    """The children of one execution as one step run sees them: a snapshot read before the
    run (`load`), or nothing. Without one, a wait on a child that is not finished suspends,
    and parking wakes the run at once if the child ended meanwhile or is no child at all
    (durable.store.waits), so the re-run, which loads them, answers."""

    def __init__(self) -> None:
        self.started: set[str] = set()  # by this run, created at its checkpoint
        self._rows: dict[str, tuple[str, Any, Any]] | None = None

    def load(self, execution_pk: int, using: str) -> None:
        rows = WorkflowExecution.objects.using(using).filter(parent_id=execution_pk)
        values = rows.values_list("workflow_id", "status", "result", "error")
        self._rows = {wid: (status, result, error) for wid, status, result, error in values}

    def outcome(self, workflow_id: str) -> ChildOutcome | None:
        if self._rows is None:
            return None
        row = self._rows.get(workflow_id)
        if row is None:
            if workflow_id in self.started:
                return None
            raise ValueError(
                f"{workflow_id!r} is not a child of this workflow; wait_for_child() takes an "
                "id returned by ctx.start_child()"
            )
        status, result, error = row
        if status not in FINISHED_STATUSES:
            return None
        return ChildOutcome(status, result, error)
