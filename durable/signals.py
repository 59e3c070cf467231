"""Django signals for workflow lifecycle events, sent after the change commits.

Connect a receiver for in-process hooks. The sender is the run's workflow class (so
`@receiver(workflow_failed, sender=ProcessOrder)` hears one workflow), or `durable.Workflow`
when this process has no class of that name. Each receiver gets `event`, a JSON dict such as
`{"event": "step_completed", "workflow_id": ..., "workflow_name": ..., "step": ...,
"attempt": 1, "status": ..., "timestamp": ...}`. The same events are published on the
message bus (see `durable.events`). A bus that joins the writing transaction (PostgresBus on
Durable's own database: a NOTIFY is delivered at commit) publishes the event inside it, so an
event costs no transaction of its own; receivers are then sent `published=True`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from durable.dsl import Workflow, registry

logger = logging.getLogger("durable.signals")

workflow_started = Signal()
step_started = Signal()
step_completed = Signal()
step_failed = Signal()
step_retrying = Signal()
workflow_waiting = Signal()
workflow_completed = Signal()
workflow_failed = Signal()
workflow_cancelled = Signal()
# Safe deploys and restarts (durable.store.deploys, durable.store.restarts).
workflow_needs_attention = Signal()
workflow_retried = Signal()

LIFECYCLE: dict[str, Signal] = {
    "workflow_started": workflow_started,
    "step_started": step_started,
    "step_completed": step_completed,
    "step_failed": step_failed,
    "step_retrying": step_retrying,
    "workflow_waiting": workflow_waiting,
    "workflow_completed": workflow_completed,
    "workflow_failed": workflow_failed,
    "workflow_cancelled": workflow_cancelled,
    "workflow_needs_attention": workflow_needs_attention,
    "workflow_retried": workflow_retried,
}


def lifecycle_event(name: str, workflow_id: str, workflow_name: str, **data: Any) -> dict[str, Any]:
    return {
        "event": name,
        "workflow_id": workflow_id,
        "workflow_name": workflow_name,
        "timestamp": datetime.now(UTC).isoformat(),
        **data,
    }


# Publishes events inside the current transaction of a database alias, if the bus can;
# returns whether it did. Set by `durable.events` (the store sits below the bus layer).
InTransactionPublisher = Callable[[Sequence[dict[str, Any]], str], bool]
_in_transaction_publisher: InTransactionPublisher | None = None


def set_in_transaction_publisher(publisher: InTransactionPublisher | None) -> None:
    global _in_transaction_publisher
    _in_transaction_publisher = publisher


def send_now(event: dict[str, Any], *, published: bool = False) -> None:
    """Send `event` to its signal's receivers; a failing receiver never breaks the engine.
    `published`: the bus already carries it (it rode the transaction that made it)."""
    signal = LIFECYCLE[event["event"]]
    sender = sender_of(event)
    for receiver, response in signal.send_robust(sender=sender, event=event, published=published):
        if isinstance(response, Exception):
            logger.warning(
                "lifecycle receiver %r failed on %s: %s", receiver, event["event"], response
            )


def sender_of(event: dict[str, Any]) -> type[Workflow]:
    """The workflow class that names `event`'s run, as Django signals name a sending class."""
    definition = registry.find(str(event.get("workflow_name", "")))
    return definition.workflow_class if definition is not None else Workflow


def send_on_commit(event: dict[str, Any], using: str) -> None:
    """Send `event` once the current transaction commits (at once outside one)."""
    collected = getattr(_collecting, "events", None)
    if collected is not None:
        collected.append(event)
        return
    _send_all_on_commit([event], using)


_collecting = threading.local()


@contextmanager
def batched_events(using: str) -> Iterator[Callable[[], None]]:
    """Inside the block, `send_on_commit` only collects events. They are published
    together (one statement for a batch checkpoint's dozens of events instead of one each)
    when the block calls the function it is given, and when it ends without an error; still
    inside the caller's transaction."""
    if getattr(_collecting, "events", None) is not None:
        yield lambda: None  # an enclosing batch publishes them
        return
    events: list[dict[str, Any]] = []

    def publish() -> None:
        if events:
            collected = events[:]
            events.clear()
            _send_all_on_commit(collected, using)

    _collecting.events = events
    try:
        yield publish
    finally:
        _collecting.events = None
    publish()


def _send_all_on_commit(events: list[dict[str, Any]], using: str) -> None:
    publisher = _in_transaction_publisher
    published = False
    if publisher is not None and transaction.get_connection(using).in_atomic_block:
        published = publisher(events, using)

    def send() -> None:
        for event in events:
            send_now(event, published=published)

    transaction.on_commit(send, using=using)
