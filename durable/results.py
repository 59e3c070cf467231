"""Waiting for an execution's outcome: `durable.get_result` and `durable.aget_result`.

The caller subscribes to the execution's topic on the message bus, then reads its status:
a workflow-level event (completed, failed, cancelled...) wakes it to read the status again,
so on a bus that crosses processes (PostgreSQL NOTIFY, Redis, RabbitMQ, NATS...) nothing
polls. The status is still read every `RECHECK_SECONDS`, because a pub/sub bus may drop a
message (a reconnect) and the in-memory bus does not hear workers in other processes; on
such a bus the reads start at 50 ms and back off to one a second. A run that continued as
new is followed to the run that carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async

from durable.bus import MessageBusError, get_bus
from durable.conf import durable_settings
from durable.events import workflow_topic
from durable.exceptions import ExecutionNotFound, WorkflowFailed
from durable.models import FINISHED_STATUSES, ExecutionStatus, WorkflowExecution

logger = logging.getLogger("durable.results")

# How often the status is read anyway on a bus that delivers across processes.
RECHECK_SECONDS = 5.0
# Without such a bus: the first and the longest pause between reads.
POLL_FIRST = 0.05
POLL_MAX = 1.0


def get_result(workflow_id: str, timeout: float | None = None) -> Any:
    """Wait until execution `workflow_id` finishes and return its result.

    A run that continued as new (`ctx.continue_as_new`) is followed to the run that
    carries on, and so on: the result is the last run's. Raises `WorkflowFailed` (with the
    stored error) if it ended failed, compensated, compensation_failed or cancelled;
    `TimeoutError` if it has not finished after `timeout` seconds (None: wait as long as it
    takes); `ExecutionNotFound` for an unknown id.
    """
    deadline = _deadline(timeout)
    workflow_id = str(workflow_id)
    while True:
        status = _wait_until_finished(workflow_id, deadline)
        if status != ExecutionStatus.CONTINUED:
            return _outcome(workflow_id, status)
        workflow_id = _successor(workflow_id)


def _wait_until_finished(workflow_id: str, deadline: float | None) -> str:
    status = _status(workflow_id)
    if status in FINISHED_STATUSES:
        return status
    bus = get_bus()
    try:
        subscription = bus.subscribe(workflow_topic(workflow_id))
    except MessageBusError as exc:
        logger.warning("get_result(%s) polls: the bus is unavailable (%s)", workflow_id, exc)
        subscription = None
    try:
        pause = POLL_FIRST
        while True:
            # Read after subscribing: an ending published meanwhile is in the inbox.
            status = _status(workflow_id)
            if status in FINISHED_STATUSES:
                return status
            remaining = _remaining(deadline, workflow_id, status)
            if subscription is not None and bus.capabilities.delivers_across_processes:
                _wait_for_workflow_event(subscription, min(remaining, RECHECK_SECONDS))
                continue
            if subscription is not None:
                _wait_for_workflow_event(subscription, min(remaining, pause))
            else:
                time.sleep(min(remaining, pause))
            pause = min(pause * 2, POLL_MAX)
    finally:
        if subscription is not None:
            subscription.close()


async def aget_result(workflow_id: str, timeout: float | None = None) -> Any:
    """`get_result` for async code: waits on the event loop, not in a thread."""
    deadline = _deadline(timeout)
    workflow_id = str(workflow_id)
    while True:
        status = await _await_finished(workflow_id, deadline)
        if status != ExecutionStatus.CONTINUED:
            return await sync_to_async(_outcome)(workflow_id, status)
        workflow_id = await sync_to_async(_successor)(workflow_id)


async def _await_finished(workflow_id: str, deadline: float | None) -> str:
    status_of = sync_to_async(_status)
    status = await status_of(workflow_id)
    if status in FINISHED_STATUSES:
        return status
    bus = get_bus()
    try:
        subscription = await bus.asubscribe(workflow_topic(workflow_id))
    except MessageBusError as exc:
        logger.warning("aget_result(%s) polls: the bus is unavailable (%s)", workflow_id, exc)
        subscription = None
    try:
        pause = POLL_FIRST
        while True:
            status = await status_of(workflow_id)
            if status in FINISHED_STATUSES:
                return status
            remaining = _remaining(deadline, workflow_id, status)
            crosses = bus.capabilities.delivers_across_processes
            wait = min(remaining, RECHECK_SECONDS if crosses else pause)
            if subscription is None:
                await asyncio.sleep(wait)
            else:
                end = time.monotonic() + wait
                while (left := end - time.monotonic()) > 0:
                    event = await subscription.get(timeout=left)
                    if event is None or _is_workflow_event(event):
                        break
            if not crosses:
                pause = min(pause * 2, POLL_MAX)
    finally:
        if subscription is not None:
            await subscription.aclose()


def _successor(workflow_id: str) -> str:
    """The run that carries on after `workflow_id` continued as new (started in the same
    checkpoint that ended it)."""
    successor = (
        WorkflowExecution.objects.using(_using())
        .filter(continued_from__workflow_id=workflow_id)
        .values_list("workflow_id", flat=True)
        .first()
    )
    if successor is None:
        raise ExecutionNotFound(
            f"execution {workflow_id} continued as new, but the run that carries on is gone "
            "(deleted by retention?)"
        )
    return str(successor)


def _deadline(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
    return time.monotonic() + float(timeout)


def _remaining(deadline: float | None, workflow_id: str, status: str) -> float:
    if deadline is None:
        return float("inf")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"execution {workflow_id} is still {status}")
    return remaining


def _wait_for_workflow_event(subscription: Any, seconds: float) -> None:
    """Return at the first workflow-level event (a step's events do not end a run), or
    when `seconds` pass."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        event = subscription.get(timeout=left)
        if event is None or _is_workflow_event(event):
            return


def _is_workflow_event(event: dict[str, Any]) -> bool:
    return str(event.get("event", "")).startswith("workflow_")


def _using() -> str:
    return str(durable_settings.DATABASE)


def _status(workflow_id: str) -> str:
    status = (
        WorkflowExecution.objects.using(_using())
        .filter(workflow_id=workflow_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}")
    return str(status)


def _outcome(workflow_id: str, status: str) -> Any:
    result, error = (
        WorkflowExecution.objects.using(_using())
        .filter(workflow_id=workflow_id)
        .values_list("result", "error")
        .get()
    )
    if status == ExecutionStatus.COMPLETED:
        return result
    raise WorkflowFailed(workflow_id, status, error)
