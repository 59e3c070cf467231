"""`KafkaQueue` (experimental): ready-task messages in Kafka topics (`durable[kafka]`).

Experimental: no Kafka broker could be installed where Durable is tested, so this adapter
has never run against one; only its configuration, capabilities and system checks are
tested. Options: `bootstrap_servers` (default 127.0.0.1:9092), `prefix` (default
durable), `group` (default `<prefix>.workers`), `client_config` (extra librdkafka
settings for both clients), and those of `BrokerQueue`.

- A topic per Durable queue, `<prefix>.<queue>`, keyed by task id; every worker joins one
  consumer group, so each partition is read by one worker at a time.
- Offsets are committed when a claimed task's checkpoint is settled (auto-commit off).
  Kafka commits a position, not a message: committing one offset also commits the
  earlier ones still running elsewhere in the partition. Nothing is lost by that: a task
  whose worker dies is retaken from the database when its lease expires, and published
  again.
- What Kafka cannot do, and what the adapter does instead:
  * per-message priority: none (`supports_priority=False`); a partition is read in order;
  * per-message delay: none (`supports_delay=False`); tasks due later (retries, sleeps,
    `scheduled_at`) are not published, and the worker's reconciler publishes them once
    they have been due for `reconcile_grace` seconds, so delays resolve up to
    `reconcile_grace + reconcile_interval` seconds late;
  * handing a message back: it is produced again and the original committed;
  * knowing what it holds: unknown (`_depth` is None), so the reconciler publishes every
    task that stayed due and unclaimed for `reconcile_grace` seconds, and duplicates are
    dropped at claim time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import confluent_kafka
from django.core.checks import CheckMessage, Error
from django.utils import timezone

from durable.queue.base import Capabilities
from durable.queue.broker import BrokerQueue, Delivery
from durable.store.outbox import ReadyTask

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
# How long `enqueue` waits for the broker to acknowledge what it produced.
FLUSH_TIMEOUT = 10.0


class KafkaQueue(BrokerQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_priority=False,
        supports_delay=False,
        supports_pause=True,
        supports_push_wakeup=True,
        supports_concurrent_claims=True,
        holds_messages=True,
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.bootstrap_servers = str(
            self.options.get("bootstrap_servers", DEFAULT_BOOTSTRAP_SERVERS)
        )
        self.group = str(self.options.get("group", f"{self.prefix}.workers"))
        self.client_config = dict(self.options.get("client_config", {}))
        self._producer: Any = None
        self._consumers: dict[str, Any] = {}
        self._producer_lock = threading.Lock()

    def topic(self, queue: str) -> str:
        return f"{self.prefix}.{queue}"

    def _config(self, **config: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.client_config, **config}

    def _publish(self, tasks: Sequence[ReadyTask]) -> None:
        now = timezone.now()
        due = [task for task in tasks if task.run_at <= now]
        if not due:
            return
        with self._producer_lock:
            if self._producer is None:
                self._producer = confluent_kafka.Producer(
                    self._config(**{"enable.idempotence": True})
                )
            for task in due:
                body = json.dumps(
                    {"task_id": task.task_id, "queue": task.queue, "priority": task.priority}
                )
                self._producer.produce(self.topic(task.queue), body.encode(), str(task.task_id))
            left = self._producer.flush(FLUSH_TIMEOUT)
        if left:
            raise confluent_kafka.KafkaException(f"{left} message(s) not acknowledged by Kafka")

    def _consumer(self, queue: str) -> Any:
        if queue not in self._consumers:
            consumer = confluent_kafka.Consumer(
                self._config(
                    **{
                        "group.id": self.group,
                        "enable.auto.commit": False,
                        "auto.offset.reset": "earliest",
                    }
                )
            )
            consumer.subscribe([self.topic(queue)])
            self._consumers[queue] = consumer
        return self._consumers[queue]

    def _receive(self, queue: str, limit: int, timeout: float) -> list[Delivery]:
        messages = self._consumer(queue).consume(num_messages=limit, timeout=timeout)
        found = []
        for message in messages:
            if message.error():
                raise confluent_kafka.KafkaException(message.error())
            record = json.loads(message.value())
            found.append(Delivery(int(record["task_id"]), queue, (message, record)))
        return found

    def _settle(self, delivery: Delivery) -> None:
        message, _ = delivery.handle
        self._consumer(delivery.queue).commit(message=message, asynchronous=True)

    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        now = timezone.now()
        self._publish(
            [
                ReadyTask(d.task_id, d.queue, int(d.handle[1].get("priority", 0)), now)
                for d in deliveries
            ]
        )
        for delivery in deliveries:
            self._settle(delivery)

    def _defer(self, delivery: Delivery, run_at: datetime) -> None:
        # No per-message delay: the reconciler publishes the task once it is due.
        self._settle(delivery)

    def close(self) -> None:
        super().close()
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers.clear()
        with self._producer_lock:
            if self._producer is not None:
                self._producer.flush(FLUSH_TIMEOUT)
                self._producer = None

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        servers = options.get("bootstrap_servers", DEFAULT_BOOTSTRAP_SERVERS)
        if not isinstance(servers, str) or not servers:
            messages.append(
                Error(
                    "DURABLE['QUEUE_OPTIONS']['bootstrap_servers'] must be a non-empty "
                    f"'host:port,...' string; got {servers!r}.",
                    id="durable.E016",
                )
            )
        if not isinstance(options.get("client_config", {}), dict):
            messages.append(
                Error(
                    "DURABLE['QUEUE_OPTIONS']['client_config'] must be a dict.", id="durable.E016"
                )
            )
        return messages
