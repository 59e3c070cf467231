"""The process's queue adapter, built from settings once and rebuilt when they change."""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from durable.conf import durable_settings
from durable.queue.base import QueueAdapter

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
