"""`RabbitMQBus`: a direct exchange, and an exclusive auto-delete queue per subscribed topic.

Options: `url` (default amqp://guest:guest@127.0.0.1:5672/%2F), `exchange` (default
durable.bus). The exchange is direct: a topic is an exact routing key, and every queue bound
to it gets a copy, which is fan-out per topic. Within a process, the subscriptions of a
topic share one queue (its consumer is the listener thread) and the bus copies each message
to them. Publishes wait for the broker's confirm, so a refused message raises. Messages over
RabbitMQ 4's default `max_message_size` (16 MiB) go by reference.

pika connections are not thread-safe: the listener thread owns the consuming one, and
publishers share the other under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pika
import pika.exceptions
from django.core.checks import CheckMessage, Error

from durable.bus.base import Capabilities, transport_name
from durable.bus.polling import PollingBus

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_EXCHANGE = "durable.bus"
MAX_ROUTING_KEY_BYTES = 255


@dataclass
class _Consumer:
    connection: Any  # pika.BlockingConnection
    channel: Any
    consumer_tags: dict[str, str] = field(default_factory=dict)  # routing key -> tag
    received: list[tuple[str, str]] = field(default_factory=list)

    def on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.received.append((method.routing_key, body.decode()))


class RabbitMQBus(PollingBus):
    capabilities: ClassVar[Capabilities] = Capabilities(max_payload_bytes=16 * 1024 * 1024)

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        self.exchange = str(self.options.get("exchange", DEFAULT_EXCHANGE))
        self._publisher: Any = None  # (connection, channel), opened on first publish
        self._publish_lock = threading.Lock()

    def transport_name(self, topic: str) -> str:
        return transport_name(topic, max_length=MAX_ROUTING_KEY_BYTES)

    def _open(self) -> tuple[Any, Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        return connection, channel

    def _send(self, topic: str, data: str) -> None:
        body = data.encode()
        properties = pika.BasicProperties(content_type="application/json")
        with self._publish_lock:
            # One retry: an idle publisher connection may have been closed by the broker.
            for retry in (False, True):
                try:
                    if self._publisher is None:
                        connection, channel = self._open()
                        channel.confirm_delivery()
                        self._publisher = (connection, channel)
                    self._publisher[1].basic_publish(
                        self.exchange, self.transport_name(topic), body, properties
                    )
                    return
                except pika.exceptions.AMQPError:
                    self._close_publisher()
                    if retry:
                        raise

    def _close_publisher(self) -> None:
        if self._publisher is not None:
            connection, self._publisher = self._publisher[0], None
            if connection.is_open:
                with suppress(pika.exceptions.AMQPError):  # already going away
                    connection.close()

    def _connect(self) -> _Consumer:
        connection, channel = self._open()
        return _Consumer(connection, channel)

    def _add(self, connection: _Consumer, name: str) -> None:
        declared = connection.channel.queue_declare("", exclusive=True, auto_delete=True)
        queue_name = declared.method.queue
        connection.channel.queue_bind(queue_name, self.exchange, routing_key=name)
        connection.consumer_tags[name] = connection.channel.basic_consume(
            queue_name, connection.on_message, auto_ack=True
        )

    def _remove(self, connection: _Consumer, name: str) -> None:
        # The queue is auto-delete: cancelling its only consumer deletes it.
        connection.channel.basic_cancel(connection.consumer_tags.pop(name))

    def _receive(self, connection: _Consumer, timeout: float) -> Iterable[tuple[str, str]]:
        connection.connection.process_data_events(time_limit=timeout)
        received, connection.received = connection.received, []
        return received

    def _disconnect(self, connection: _Consumer) -> None:
        if connection.connection.is_open:
            connection.connection.close()

    def close(self) -> None:
        super().close()
        with self._publish_lock:
            self._close_publisher()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        url = options.get("url", DEFAULT_URL)
        if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
            messages.append(
                Error(
                    f"DURABLE['MESSAGE_BUS_OPTIONS']['url'] must be an amqp:// URL, got {url!r}.",
                    id="durable.E013",
                )
            )
        exchange = options.get("exchange", DEFAULT_EXCHANGE)
        if not isinstance(exchange, str) or not exchange:
            messages.append(
                Error(
                    "DURABLE['MESSAGE_BUS_OPTIONS']['exchange'] must be a non-empty str.",
                    id="durable.E013",
                )
            )
        return messages
