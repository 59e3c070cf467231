"""Django's `task_started` and `task_finished`, sent from Durable's lifecycle signals.

A task's attempt starts when a worker's claim of its step commits (`step_started`) and the
task finishes when its execution's final status commits (`workflow_completed`, `_failed`,
`_cancelled`). Both are sent once committed, in the process that ran the task, so a receiver
that reads the result back (`result.refresh()`) sees what it was told. The sender is the
backend's class, as Django's own backends send it.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from durable import signals as lifecycle
from durable.tasks.framework import InvalidTaskBackend, task_backends, task_finished, task_started
from durable.tasks.workflows import PREFIX, parse_name

FINAL_SIGNALS = (
    lifecycle.workflow_completed,
    lifecycle.workflow_failed,
    lifecycle.workflow_cancelled,
)


def connect() -> None:
    lifecycle.step_started.connect(_started, dispatch_uid="durable.tasks.task_started")
    for signal in FINAL_SIGNALS:
        signal.connect(_finished, dispatch_uid="durable.tasks.task_finished")


def _started(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    _send(task_started, event)


def _finished(sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
    _send(task_finished, event)


def _send(signal: Signal, event: dict[str, Any]) -> None:
    name = str(event.get("workflow_name", ""))
    if not name.startswith(PREFIX):
        return  # a workflow's event, not a task's
    from durable.tasks.results import load_result

    alias, _ = parse_name(name)
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend:
        return  # this process has no such backend: it cannot have run the task
    signal.send(type(backend), task_result=load_result(alias, str(event["workflow_id"])))
