"""`NatsQueue`: ready-task messages in a NATS JetStream work-queue stream (`durable[nats]`).

Options: `url` (default nats://127.0.0.1:4222), `prefix` (default durable: the stream's
name and its subjects' first token), `ack_wait` (default `LEASE_SECONDS`),
`max_ack_pending` (default 10,000), `max_delay` (default one hour), and those of
`BrokerQueue`.

- One stream `<prefix>` (work-queue retention, file storage) with a subject per Durable
  queue, `<prefix>.q.<queue>`, and one durable pull consumer per queue with explicit
  acks. A claim fetches as many messages as the worker has free slots.
- A message whose task is not due yet is `nak`ed with that delay, so it comes back when
  due; delayed messages count as pending acks, so only tasks due within `max_delay` are
  published (the reconciler publishes the others once due).
- `AckWait` is the broker-side lease: a message whose consumer died is redelivered after
  it; a claimed task's message is acked after the checkpoint.
- No per-message priority: JetStream delivers a subject in publish order
  (`supports_priority=False`; the database still orders what one claim takes).

nats-py is asyncio; the adapter runs its client on an event loop thread of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import nats
import nats.errors
import nats.js.errors
from django.core.checks import CheckMessage
from django.utils import timezone
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from durable.conf import durable_settings
from durable.queue.base import Capabilities
from durable.queue.broker import BrokerQueue, Delivery
from durable.store.outbox import ReadyTask

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_MAX_ACK_PENDING = 10_000
DEFAULT_MAX_DELAY = 3600.0
# The shortest pull: a claim with nothing waiting costs this long.
MIN_FETCH = 0.02
SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]+")

T = TypeVar("T")


class NatsQueue(BrokerQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_priority=False,
        supports_delay=True,
        supports_pause=True,
        supports_push_wakeup=True,
        supports_concurrent_claims=True,
        holds_messages=True,
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        options = {"max_delay": DEFAULT_MAX_DELAY, **(options or {})}
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        self.ack_wait = float(self.options.get("ack_wait", durable_settings.LEASE_SECONDS))
        self.max_ack_pending = int(self.options.get("max_ack_pending", DEFAULT_MAX_ACK_PENDING))
        self.stream = self.prefix.replace(".", "_")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="durable-nats", daemon=True
        )
        self._thread.start()
        self._client: Any = None
        self._js: Any = None
        self._subscriptions: dict[str, Any] = {}
        self._stream_ready = False

    def subject(self, queue: str) -> str:
        return f"{self.prefix}.q.{_token(queue)}"

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # -- connection, stream, consumers (on the loop thread) ------------------------------

    async def _jetstream(self) -> Any:
        if self._client is None or self._client.is_closed:
            self._client = await nats.connect(
                self.url, name="durable-queue", max_reconnect_attempts=-1, reconnect_time_wait=0.5
            )
            self._js = self._client.jetstream()
            self._subscriptions = {}
            self._stream_ready = False
        if not self._stream_ready:
            config = StreamConfig(
                name=self.stream,
                subjects=[f"{self.prefix}.q.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
            )
            try:
                await self._js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                await self._js.add_stream(config)
            self._stream_ready = True
        return self._js

    async def _subscription(self, queue: str) -> Any:
        js = await self._jetstream()
        if queue not in self._subscriptions:
            self._subscriptions[queue] = await js.pull_subscribe(
                self.subject(queue),
                durable=_token(queue),
                stream=self.stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait,
                    max_deliver=-1,
                    max_ack_pending=self.max_ack_pending,
                ),
            )
        return self._subscriptions[queue]

    def _forget_state(self) -> None:
        """After an error: look the stream and consumers up again (they may be gone)."""
        self._stream_ready = False
        self._subscriptions = {}

    # -- the broker operations -----------------------------------------------------------

    def _publish(self, tasks: Sequence[ReadyTask]) -> None:
        async def publish() -> None:
            js = await self._jetstream()
            for task in tasks:
                body = json.dumps(
                    {
                        "task_id": task.task_id,
                        "queue": task.queue,
                        "priority": task.priority,
                        "run_at": task.run_at.isoformat(),
                    }
                ).encode()
                await js.publish(self.subject(task.queue), body, stream=self.stream)

        try:
            self._call(publish())
        except Exception:
            self._forget_state()
            raise

    def _receive(self, queue: str, limit: int, timeout: float) -> list[Delivery]:
        async def fetch() -> list[Delivery]:
            subscription = await self._subscription(queue)
            try:
                messages = await subscription.fetch(limit, timeout=max(timeout, MIN_FETCH))
            except (TimeoutError, nats.errors.TimeoutError):
                return []
            found = []
            now = timezone.now()
            for message in messages:
                record = json.loads(message.data)
                run_at = datetime.fromisoformat(record["run_at"])
                if run_at > now:
                    # Not due: back to the stream until it is (no database round trip).
                    await message.nak(delay=(run_at - now).total_seconds())
                    continue
                found.append(Delivery(int(record["task_id"]), queue, message))
            return found

        try:
            return self._call(fetch(), timeout=timeout + 30)
        except Exception:
            self._forget_state()
            raise

    def _settle(self, delivery: Delivery) -> None:
        self._call(delivery.handle.ack())

    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        async def nak() -> None:
            for delivery in deliveries:
                await delivery.handle.nak()

        self._call(nak())

    def _defer(self, delivery: Delivery, run_at: datetime) -> None:
        delay = max((run_at - timezone.now()).total_seconds(), 0.0)
        self._call(delivery.handle.nak(delay=delay))

    def _depth(self, queue: str) -> int | None:
        async def depth() -> int:
            info = await (await self._subscription(queue)).consumer_info()
            return int(info.num_pending) + int(info.num_ack_pending)

        try:
            return self._call(depth())
        except Exception:
            self._forget_state()
            raise

    # -- for tests and operators ---------------------------------------------------------

    def purge_stream(self) -> None:
        """Drop every message of the stream (what a broker that lost its data holds)."""

        async def purge() -> None:
            await (await self._jetstream()).purge_stream(self.stream)

        self._call(purge())

    def delete_stream(self) -> None:
        async def delete() -> None:
            js = await self._jetstream()
            await js.delete_stream(self.stream)
            self._forget_state()

        self._call(delete())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        super().close()

        async def shutdown() -> None:
            if self._client is not None and not self._client.is_closed:
                await self._client.close()

        try:
            self._call(shutdown(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        return [
            *super().check(options),
            *cls._check_url(options, DEFAULT_URL, ("nats://", "tls://")),
        ]


def _token(queue: str) -> str:
    """A subject token / consumer name for `queue` (a digest when it has other characters)."""
    if SUBJECT_TOKEN.fullmatch(queue):
        return queue
    return "h" + hashlib.sha256(queue.encode()).hexdigest()[:24]
