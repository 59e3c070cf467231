"""Django signals for workflow lifecycle events, sent after the change commits.

Connect a receiver for in-process hooks. The sender is the run's workflow class (so
`@receiver(workflow_failed, sender=ProcessOrder)` hears one workflow), or `durable.Workflow`
when this process has no class of that name. Each receiver gets `event`, a JSON dict such as
`{"event": "step_completed", "workflow_id": ..., "workflow_name": ..., "step": ...,
"attempt": 1, "status": ..., "timestamp": ...}`. The same events are published on the
message bus (see `durable.events`). The store sends them through its outbox
(`durable.store.outbox`): a bus that joins the writing transaction (PostgresBus on
Durable's own database: a NOTIFY is delivered at commit) publishes the event inside it, so
an event costs no transaction of its own; receivers are then sent `published=True`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

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
workflow_continued = Signal()
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
    "workflow_continued": workflow_continued,
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
