"""`RedisBus`: Redis pub/sub. Options: `url` (default redis://127.0.0.1:6379/0).

Redis disconnects a subscriber whose output buffer passes its pub/sub limit (32 MB by
default), so single messages stay far below it: larger ones go by reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis
from django.core.checks import CheckMessage, Error
from redis.client import PubSub

from durable.bus.base import SUBSCRIBE_TIMEOUT, Capabilities, MessageBusError, transport_name
from durable.bus.polling import PollingBus

DEFAULT_URL = "redis://127.0.0.1:6379/0"
MAX_BATCH = 1000


@dataclass
class _Listener:
    pubsub: PubSub
    # Messages read while waiting for a subscription's confirmation, not yet dispatched.
    pending: list[tuple[str, str]] = field(default_factory=list)


class RedisBus(PollingBus):
    capabilities: ClassVar[Capabilities] = Capabilities(max_payload_bytes=1024 * 1024)

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        # Named, so `CLIENT LIST` tells an operator whose connections these are.
        self._client = redis.Redis.from_url(self.url, client_name=f"durable-bus-{os.getpid()}")

    def transport_name(self, topic: str) -> str:
        return transport_name(topic, max_length=1024)

    def _send(self, topic: str, data: str) -> None:
        self._client.publish(self.transport_name(topic), data)

    def _connect(self) -> _Listener:
        self._client.ping()  # fail here, not silently inside the first poll
        return _Listener(self._client.pubsub())  # type: ignore[no-untyped-call]

    def _add(self, connection: _Listener, name: str) -> None:
        connection.pubsub.subscribe(name)
        for _ in range(int(SUBSCRIBE_TIMEOUT / self.tick)):
            message = connection.pubsub.get_message(timeout=self.tick)
            if message is None:
                continue
            if message["type"] == "subscribe" and _text(message["channel"]) == name:
                return
            if message["type"] == "message":
                connection.pending.append((_text(message["channel"]), _text(message["data"])))
        raise MessageBusError(f"Redis did not confirm the subscription to {name!r}")

    def _remove(self, connection: _Listener, name: str) -> None:
        connection.pubsub.unsubscribe(name)  # type: ignore[no-untyped-call]

    def _receive(self, connection: _Listener, timeout: float) -> Iterable[tuple[str, str]]:
        received, connection.pending = connection.pending, []
        wait = timeout
        # Bounded, so a flood of messages cannot hold off subscription changes.
        for _ in range(MAX_BATCH):
            message = connection.pubsub.get_message(timeout=wait)
            if message is None:
                break
            wait = 0.0
            if message["type"] == "message":
                received.append((_text(message["channel"]), _text(message["data"])))
        return received

    def _disconnect(self, connection: _Listener) -> None:
        connection.pubsub.close()

    def close(self) -> None:
        super().close()
        self._client.close()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        url = options.get("url", DEFAULT_URL)
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            messages.append(
                Error(
                    f"DURABLE['MESSAGE_BUS_OPTIONS']['url'] must be a redis:// URL, got {url!r}.",
                    id="durable.E013",
                )
            )
        return messages


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
