"""Message buses: JSON messages published to topics reach the subscriptions open at the time.

`get_bus()` is the process's bus, built from `DURABLE["MESSAGE_BUS"]` and
`DURABLE["MESSAGE_BUS_OPTIONS"]` once, and rebuilt when those settings change.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from durable.bus.base import (
    AsyncSubscription,
    Capabilities,
    MessageBus,
    MessageBusError,
    Subscription,
)
from durable.conf import durable_settings

__all__ = [
    "CLIENT_EXTRAS",
    "AsyncSubscription",
    "Capabilities",
    "MessageBus",
    "MessageBusError",
    "Subscription",
    "get_bus",
    "reset_bus",
]

# The client library a bus or queue adapter imports -> the extra that installs it
# (durable[redis]).
CLIENT_EXTRAS = {
    "redis": "redis",
    "pika": "rabbitmq",
    "nats": "nats",
    "confluent_kafka": "kafka",
}

_lock = threading.Lock()
_bus: MessageBus | None = None


def get_bus() -> MessageBus:
    global _bus
    with _lock:
        if _bus is None:
            cls = durable_settings.bus_class
            _bus = cls(
                using=durable_settings.DATABASE, options=dict(durable_settings.MESSAGE_BUS_OPTIONS)
            )
        return _bus


def reset_bus() -> None:
    """Close the process's bus; the next `get_bus()` builds a new one from settings."""
    global _bus
    with _lock:
        bus, _bus = _bus, None
    if bus is not None:
        bus.close()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DURABLE", "DATABASES", "CHANNEL_LAYERS"):
        reset_bus()
