"""Lifecycle events on the message bus, and custom events of your own.

The engine publishes each lifecycle event (see `durable.signals`) to the topic of its
workflow, `workflow.<workflow_id>`; workflow-level events (started, waiting, completed,
failed, cancelled) also go to the topic `workflows`, for views that list executions.

    for event in durable.events.subscribe_workflow(wid):
        print(event["event"], event.get("step"))   # ends after the workflow's final event
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from durable.bus import AsyncSubscription, MessageBus, Subscription, get_bus
from durable.conf import durable_settings
from durable.serialization import normalize
from durable.signals import LIFECYCLE
from durable.store import history, outbox

logger = logging.getLogger("durable.events")

ALL_WORKFLOWS_TOPIC = "workflows"
FINAL_EVENTS = frozenset(
    {"workflow_completed", "workflow_failed", "workflow_cancelled", "workflow_continued"}
)
WORKFLOW_EVENTS = frozenset({"workflow_started", "workflow_waiting"}) | FINAL_EVENTS


def workflow_topic(workflow_id: str) -> str:
    return f"workflow.{workflow_id}"


def publish_workflow_event(
    workflow_id: str, event: str, data: dict[str, Any] | None = None
) -> None:
    """Publish a custom event to the workflow's subscribers."""
    if not isinstance(event, str) or not event:
        raise ValueError(f"event must be a non-empty string, got {event!r}")
    if event in LIFECYCLE:
        raise ValueError(f"{event!r} is a lifecycle event; only the engine publishes it")
    message = {
        "event": event,
        "workflow_id": str(workflow_id),
        "timestamp": datetime.now(UTC).isoformat(),
        "data": normalize(data or {}, "data"),
    }
    get_bus().publish(workflow_topic(str(workflow_id)), message)


def subscribe_workflow(
    workflow_id: str,
    *,
    until_finished: bool = True,
    timeout: float | None = None,
    replay: bool = False,
) -> Iterator[dict[str, Any]]:
    """Subscribe now and return an iterator of the workflow's events from this moment on.

    With `replay`, the events the execution's stored rows tell of come first (marked
    `"replayed": True`; see `durable.store.history`), then the live ones, without
    duplicates: subscribing happens before the history is read, so nothing falls between
    the two. An unknown id raises ExecutionNotFound. It stops after the workflow's final
    event (`until_finished`), or when `timeout` seconds pass without an event.
    """
    subscription = get_bus().subscribe(workflow_topic(str(workflow_id)))
    try:
        stored = _stored(str(workflow_id)) if replay else _NO_HISTORY
    except BaseException:
        subscription.close()
        raise
    return _events(subscription, until_finished, timeout, stored)


class _History:
    """Replayed events, and a test for the live ones they already told of."""

    def __init__(self, events: list[dict[str, Any]], read_at: str) -> None:
        self.events = events
        self.read_at = read_at
        self._told = {history.identity(event) for event in events}

    def told(self, message: dict[str, Any]) -> bool:
        # An event stamped before the read, that the history reports: it was published
        # between the subscription and the read. A later one of the same identity (a
        # waiting step that runs again as the same attempt) is new.
        return (
            history.identity(message) in self._told
            and str(message.get("timestamp", "")) <= self.read_at
        )


_NO_HISTORY = _History([], "")


def _stored(workflow_id: str) -> _History:
    read_at = datetime.now(UTC).isoformat()
    return _History(
        history.stored_history(workflow_id, using=str(durable_settings.DATABASE)), read_at
    )


def _events(
    subscription: Subscription,
    until_finished: bool,
    timeout: float | None,
    stored: _History,
) -> Iterator[dict[str, Any]]:
    try:
        for event in stored.events:
            yield event
            if until_finished and event.get("event") in FINAL_EVENTS:
                return
        while True:
            message = subscription.get(timeout=timeout)
            if message is None:
                return
            if stored.told(message):
                continue  # published between the subscription and the history read
            yield message
            if until_finished and message.get("event") in FINAL_EVENTS:
                return
    finally:
        subscription.close()


async def asubscribe_workflow(
    workflow_id: str,
    *,
    until_finished: bool = True,
    timeout: float | None = None,
    replay: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    """The async variant: `async for event in await asubscribe_workflow(wid): ...`."""
    subscription = await get_bus().asubscribe(workflow_topic(str(workflow_id)))
    try:
        stored = await sync_to_async(_stored)(str(workflow_id)) if replay else _NO_HISTORY
    except BaseException:
        await subscription.aclose()
        raise
    return _aevents(subscription, until_finished, timeout, stored)


async def _aevents(
    subscription: AsyncSubscription,
    until_finished: bool,
    timeout: float | None,
    stored: _History,
) -> AsyncIterator[dict[str, Any]]:
    try:
        for event in stored.events:
            yield event
            if until_finished and event.get("event") in FINAL_EVENTS:
                return
        while True:
            message = await subscription.get(timeout=timeout)
            if message is None:
                return
            if stored.told(message):
                continue
            yield message
            if until_finished and message.get("event") in FINAL_EVENTS:
                return
    finally:
        await subscription.aclose()


def publish_after_commit(events: Sequence[dict[str, Any]]) -> None:
    """Publish lifecycle events that could not ride their transaction (a bus that does not
    join it). A bus that is down costs the events, never the workflow."""
    try:
        get_bus().publish_batch([(_topics(event), event) for event in events], checked=True)
    except Exception as exc:
        logger.warning(
            "could not publish %s of %s: %s",
            ", ".join(sorted({event["event"] for event in events})),
            ", ".join(sorted({event["workflow_id"] for event in events})),
            exc,
        )


def publish_in_transaction(events: Sequence[dict[str, Any]], using: str) -> bool:
    """Publish inside the current transaction of `using` when the bus joins it (its messages
    are then delivered at commit, and cost no transaction of their own)."""
    bus = get_bus()
    if not bus.joins_transaction(using):
        return False
    try:
        bus.publish_batch([(_topics(event), event) for event in events], checked=True)
    except DatabaseError:
        raise  # the transaction is broken: its writer must see it and roll back
    except Exception as exc:
        logger.warning(
            "could not publish %s of %s: %s",
            ", ".join(sorted({event["event"] for event in events})),
            ", ".join(sorted({event["workflow_id"] for event in events})),
            exc,
        )
    return True


def _publish(bus: MessageBus, event: dict[str, Any]) -> None:
    bus.publish_to(_topics(event), event)


def _topics(event: dict[str, Any]) -> list[str]:
    topics = [workflow_topic(event["workflow_id"])]
    if event["event"] in WORKFLOW_EVENTS:
        topics.append(ALL_WORKFLOWS_TOPIC)
    return topics


def connect() -> None:
    """Publish the store's lifecycle events on the bus (called once, when the app is
    ready): inside their transaction when the bus joins it, after commit otherwise."""
    outbox.connect(events=publish_in_transaction, late_events=publish_after_commit)
