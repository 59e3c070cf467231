"""`RabbitMQQueue`: ready-task messages in durable RabbitMQ queues (`durable[rabbitmq]`).

Options: `url` (default amqp://guest:guest@127.0.0.1:5672/%2F), `prefix` (default
durable), `max_priority` (default 10), and those of `BrokerQueue`.

- Each Durable queue is a durable priority queue `<prefix>.<queue>`
  (`x-max-priority`); messages are persistent and published with confirms. Priorities
  are clamped to 0..max_priority (RabbitMQ has no negative priorities).
- Delayed work waits in per-delay queues without consumers whose queue TTL dead-letters
  into the ready queue: `<prefix>.<queue>.delay.<ms>`, one per power-of-two delay from
  100 ms, so every message in such a queue expires in publish order. A message that
  comes out early (it took a shorter bucket than its whole delay) is deferred again with
  the rest. Delay queues nobody used for a while expire (`x-expires`).
- A claim pulls as many messages as the worker has free slots (`basic_get`, manual acks:
  the prefetch is the concurrency, and a busy worker holds no messages an idle one could
  run); an idle worker waits on a consumer with prefetch 1 that it cancels as soon as a
  message arrives. A claimed task's message is acknowledged after its checkpoint; a
  consumer that dies leaves its messages unacknowledged, and RabbitMQ requeues them when
  its connection closes.

pika connections are not thread-safe: the thread that consumes owns the consuming
connection (acks from step threads are handed to it with `add_callback_threadsafe`), and
publishers share another one under a lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

import pika
import pika.exceptions
from django.core.checks import CheckMessage, Error
from django.utils import timezone

from durable.queue.base import Capabilities
from durable.queue.broker import BrokerQueue, Delivery
from durable.store.outbox import ReadyTask

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_MAX_PRIORITY = 10
SHORTEST_DELAY_MS = 100
# An unused delay queue is deleted after its TTL plus this long.
DELAY_QUEUE_IDLE_MS = 60_000


class _Consumer:
    """The consuming connection, its channel and what it received, owned by one thread."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.owner = threading.get_ident()
        self.received: dict[str, list[Delivery]] = {}
        self.consuming: set[str] = set()

    def on_message(
        self, queue: str, channel: Any, method: Any, properties: Any, body: bytes
    ) -> None:
        record = json.loads(body)
        self.received.setdefault(queue, []).append(
            Delivery(
                int(record["task_id"]),
                queue,
                (self, method.delivery_tag, int(record.get("priority", 0))),
            )
        )


class RabbitMQQueue(BrokerQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_priority=True,
        supports_delay=True,
        supports_pause=True,
        supports_push_wakeup=True,
        supports_concurrent_claims=True,
        holds_messages=True,
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        self.max_priority = int(self.options.get("max_priority", DEFAULT_MAX_PRIORITY))
        self._consumer: _Consumer | None = None
        self._publisher: tuple[Any, Any] | None = None
        self._declared: set[str] = set()
        self._publish_lock = threading.Lock()

    def queue_name(self, queue: str) -> str:
        return f"{self.prefix}.{queue}"

    # -- publishing (any thread) ---------------------------------------------------------

    def _publish(self, tasks: Sequence[ReadyTask]) -> None:
        now = timezone.now()
        with self._publish_lock:
            for retry in (False, True):
                try:
                    channel = self._publishing_channel()
                    for task in tasks:
                        delay_ms = int((task.run_at - now).total_seconds() * 1000)
                        self._send(channel, task, delay_ms)
                    return
                except pika.exceptions.AMQPError:
                    self._close_publisher()
                    if retry:
                        raise

    def _publishing_channel(self) -> Any:
        if self._publisher is None:
            connection = pika.BlockingConnection(pika.URLParameters(self.url))
            channel = connection.channel()
            channel.confirm_delivery()
            self._publisher = (connection, channel)
            self._declared = set()
        return self._publisher[1]

    def _send(self, channel: Any, task: ReadyTask, delay_ms: int) -> None:
        ready = self._declare_ready(channel, task.queue)
        routing_key = ready
        if delay_ms > 0:
            bucket = SHORTEST_DELAY_MS
            while bucket * 2 <= delay_ms:
                bucket *= 2
            routing_key = self._declare_delay(channel, ready, bucket)
        body = json.dumps(
            {
                "task_id": task.task_id,
                "queue": task.queue,
                "priority": task.priority,
                "run_at": task.run_at.isoformat(),
            }
        )
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            priority=max(0, min(self.max_priority, task.priority)),
        )
        channel.basic_publish("", routing_key, body.encode(), properties, mandatory=True)

    def _declare_ready(self, channel: Any, queue: str) -> str:
        name = self.queue_name(queue)
        if name not in self._declared:
            channel.queue_declare(
                name, durable=True, arguments={"x-max-priority": self.max_priority}
            )
            self._declared.add(name)
        return name

    def _declare_delay(self, channel: Any, ready: str, bucket_ms: int) -> str:
        name = f"{ready}.delay.{bucket_ms}"
        if name not in self._declared:
            channel.queue_declare(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": bucket_ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": ready,
                    "x-expires": bucket_ms + DELAY_QUEUE_IDLE_MS,
                },
            )
            self._declared.add(name)
        return name

    def _close_publisher(self) -> None:
        if self._publisher is not None:
            connection, self._publisher = self._publisher[0], None
            if connection.is_open:
                with suppress(pika.exceptions.AMQPError):
                    connection.close()

    def _depth(self, queue: str) -> int | None:
        with self._publish_lock:
            try:
                declared = self._publishing_channel().queue_declare(
                    self.queue_name(queue),
                    durable=True,
                    arguments={"x-max-priority": self.max_priority},
                )
            except pika.exceptions.AMQPError:
                self._close_publisher()  # reconnect next time (the broker restarted?)
                raise
        return int(declared.method.message_count)

    # -- consuming (the owning thread) ---------------------------------------------------

    def _consumer_for(self, queues: Sequence[str]) -> _Consumer:
        consumer = self._consumer
        if consumer is None or not consumer.connection.is_open:
            consumer = self._consumer = _Consumer(self.url)
            # One unacknowledged push per wake-up consumer (see `_receive_any`).
            consumer.channel.basic_qos(prefetch_count=1)
        for queue in queues:
            if queue not in consumer.consuming:
                consumer.channel.queue_declare(
                    self.queue_name(queue),
                    durable=True,
                    arguments={"x-max-priority": self.max_priority},
                )
                consumer.consuming.add(queue)  # declared
        return consumer

    def _receive(self, queue: str, limit: int, timeout: float) -> list[Delivery]:
        """Pull exactly what the free slots can take (`basic_get`), so a busy worker
        never sits on messages an idle one could run."""
        try:
            consumer = self._consumer_for([queue])
            found = self._take(consumer, queue, limit)
            while len(found) < limit:
                method, _, body = consumer.channel.basic_get(self.queue_name(queue))
                if method is None:
                    break
                consumer.on_message(queue, consumer.channel, method, None, body)
                found += self._take(consumer, queue, limit - len(found))
        except pika.exceptions.AMQPError:
            self._drop_consumer()  # RabbitMQ requeues what the connection held
            raise
        if not found and timeout > 0:
            found = self._receive_any([queue], timeout)
        return found

    def _receive_any(self, queues: Sequence[str], timeout: float) -> list[Delivery]:
        """Wait for a push: a consumer per queue only while idle (prefetch 1), cancelled
        as soon as something arrives, so nothing is held between waits."""
        try:
            consumer = self._consumer_for(queues)
            tags = [
                consumer.channel.basic_consume(
                    self.queue_name(queue), partial(consumer.on_message, queue)
                )
                for queue in queues
            ]
            try:
                consumer.connection.process_data_events(time_limit=0)
                if not any(consumer.received.get(q) for q in queues):
                    consumer.connection.process_data_events(time_limit=timeout)
            finally:
                for tag in tags:
                    consumer.channel.basic_cancel(tag)
        except pika.exceptions.AMQPError:
            self._drop_consumer()
            raise
        found: list[Delivery] = []
        for queue in queues:
            found += self._take(consumer, queue, len(consumer.received.get(queue, [])))
        return found

    @staticmethod
    def _take(consumer: _Consumer, queue: str, limit: int) -> list[Delivery]:
        found = consumer.received.get(queue, [])
        taken, consumer.received[queue] = found[:limit], found[limit:]
        return taken

    def _on_owner(self, delivery: Delivery, action: str) -> None:
        consumer: _Consumer = delivery.handle[0]
        tag = delivery.handle[1]
        if consumer is not self._consumer or not consumer.connection.is_open:
            return  # its connection is gone, and RabbitMQ requeued the message
        channel = consumer.channel
        call = (
            partial(channel.basic_ack, tag)
            if action == "ack"
            else partial(channel.basic_nack, tag, requeue=True)
        )
        if threading.get_ident() == consumer.owner:
            call()
        else:
            consumer.connection.add_callback_threadsafe(call)

    def _settle(self, delivery: Delivery) -> None:
        self._on_owner(delivery, "ack")

    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._on_owner(delivery, "nack")

    def _defer(self, delivery: Delivery, run_at: datetime) -> None:
        _, _, priority = delivery.handle
        record = ReadyTask(delivery.task_id, delivery.queue, priority, run_at)
        self._publish([record])
        self._settle(delivery)

    def _drop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None and consumer.connection.is_open:
            with suppress(pika.exceptions.AMQPError):
                consumer.connection.close()

    def close(self) -> None:
        super().close()
        consumer = self._consumer
        if consumer is not None and consumer.connection.is_open:
            with suppress(pika.exceptions.AMQPError):
                # Deliver the acks step threads handed over before closing.
                consumer.connection.process_data_events(time_limit=0)
        self._drop_consumer()
        with self._publish_lock:
            self._close_publisher()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = [
            *super().check(options),
            *cls._check_url(options, DEFAULT_URL, ("amqp://", "amqps://")),
        ]
        max_priority = options.get("max_priority", DEFAULT_MAX_PRIORITY)
        if (
            isinstance(max_priority, bool)
            or not isinstance(max_priority, int)
            or not (1 <= max_priority <= 255)
        ):
            messages.append(
                Error(
                    "DURABLE['QUEUE_OPTIONS']['max_priority'] must be an int from 1 to 255; "
                    f"got {max_priority!r}.",
                    id="durable.E016",
                )
            )
        return messages
