"""The process's queue adapter, built from settings once and rebuilt when they change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from durable.conf import durable_settings
from durable.queue.base import QueueAdapter
from durable.store import outbox
from durable.store.outbox import ReadyTask

logger = logging.getLogger("durable.queue")

_lock = threading.Lock()
_adapter: QueueAdapter | None = None


def queue_adapter() -> QueueAdapter:
    global _adapter
    with _lock:
        if _adapter is None:
            cls = durable_settings.queue_adapter_class
            _adapter = cls(
                using=durable_settings.DATABASE, options=dict(durable_settings.QUEUE_OPTIONS)
            )
        return _adapter


def reset_queue_adapter() -> None:
    global _adapter
    with _lock:
        if _adapter is not None:
            _adapter.close()
        _adapter = None


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DURABLE", "DATABASES"):
        reset_queue_adapter()


def publish_ready(tasks: Sequence[ReadyTask]) -> None:
    """After commit, hand ready tasks to a broker adapter, in any process (a web request
    that starts a workflow too). A broker that is down costs latency, never work: the
    rows are committed, and the workers' reconciler publishes them again later."""
    try:
        if not durable_settings.queue_adapter_class.capabilities.holds_messages:
            return
        queue_adapter().enqueue(tasks)
    except Exception:
        logger.warning(
            "could not publish %d ready task(s) to the queue broker; the reconciler "
            "will publish them again",
            len(tasks),
            exc_info=True,
        )


def connect() -> None:
    outbox.connect(tasks=publish_ready)
