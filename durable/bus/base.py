"""The message bus contract.

A bus carries JSON objects from publishers to the subscribers a topic has *when* a message
is published: no history, no acknowledgements. A subscription receives every message
published after `subscribe()` returned, in the order each publisher sent them, for as long
as the transport stays connected; a message still in flight when it subscribed may reach
it too. In a process, the subscriptions of one topic share one transport subscription (a
LISTEN, a SUBSCRIBE, a queue binding) and the bus fans each message out to their inboxes,
so a slow reader never holds up the others.

A message whose encoding is larger than the transport carries (`max_payload_bytes`) is
stored in the `BusPayload` table and sent as `{"$ref": id}`; subscribers load it back
transparently. Capabilities are data, so callers and system checks ask a bus what it does
instead of testing its class.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from asgiref.sync import sync_to_async
from django.core.checks import CheckMessage, Error

from durable.exceptions import DurableError
from durable.serialization import NotJSONError, dumps, normalize
from durable.store import bus_payloads

logger = logging.getLogger("durable.bus")

Message = dict[str, Any]

REF_KEY = "$ref"
# How long `subscribe` waits for the transport to confirm the subscription.
SUBSCRIBE_TIMEOUT = 10.0
# Transport names for topics: readable when the topic fits the transport's rules, a digest
# otherwise. The two prefixes differ in their 12th character, so they never collide.
NAME_PREFIX = "durable.bus."
HASHED_PREFIX = "durable.bus-sha256."
NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")


class MessageBusError(DurableError):
    """The bus could not do what was asked (a subscription the transport never confirmed)."""


@dataclass(frozen=True)
class Capabilities:
    # The largest encoded message the transport carries; larger ones go by reference.
    # None: no limit worth enforcing.
    max_payload_bytes: int | None = None
    # A message published in one process reaches subscribers in other processes.
    delivers_across_processes: bool = True


def transport_name(topic: str, *, max_length: int, allowed: re.Pattern[str] = NAME_CHARS) -> str:
    """The transport's name (channel, group, routing key) for `topic`."""
    if allowed.fullmatch(topic) and len(NAME_PREFIX) + len(topic) <= max_length:
        return NAME_PREFIX + topic
    return HASHED_PREFIX + hashlib.sha256(topic.encode()).hexdigest()[:40]


class MessageBus(ABC):
    """One instance per process (see `durable.bus.get_bus`), created from settings.

    Adapters implement `_send` and, if messages reach them from outside, `_listen` and
    `_unlisten`, and hand what arrives to `_dispatch`.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        self.using = using
        self.options = dict(options or {})
        self.max_payload_bytes = _effective_limit(
            self.capabilities.max_payload_bytes, self.options.get("max_payload_bytes")
        )
        self._subscriptions: dict[str, list[BaseSubscription]] = {}
        # Guards `_subscriptions`; held only briefly, since transports dispatch under it.
        self._registry_lock = threading.Lock()
        # Serialises subscribing and unsubscribing, which may wait on the transport.
        self._subscribe_lock = threading.Lock()
        self._closed = False

    # The public interface.

    def publish(self, topic: str, message: Message) -> None:
        """Send `message` to the subscribers `topic` has now.

        Raises NotJSONError, naming the offending path, for anything JSON cannot carry.
        """
        self.publish_to([topic], message)

    def publish_to(self, topics: Sequence[str], message: Message) -> None:
        """`publish(topic, message)` for each of `topics`, the message encoded once (and
        sent in one statement where the transport allows, see `_send_many`)."""
        self.publish_batch([(topics, message)])

    def publish_batch(
        self, messages: Sequence[tuple[Sequence[str], Message]], *, checked: bool = False
    ) -> None:
        """`publish_to` for each (topics, message), all sent together where the transport
        allows. Every message is checked before any is sent, unless the caller made them
        of JSON values already (`checked`: the engine's lifecycle events)."""
        encoded: list[tuple[str, str]] = []
        for topics, message in messages:
            for topic in topics:
                _check_topic(topic)
            if not isinstance(message, dict):
                raise NotJSONError(
                    "message", f"a message must be a dict, got {type(message).__name__}"
                )
            payload = message if checked else normalize(message, "message")
            data = dumps(payload)
            limit = self.max_payload_bytes
            # A message that looks like a reference is sent as one, so no reader mistakes it.
            by_ref = _ref_id(payload) is not None or (
                limit is not None and len(data.encode()) > limit
            )
            encoded.extend(
                (topic, dumps({REF_KEY: bus_payloads.save(topic, payload, using=self.using)}))
                if by_ref
                else (topic, data)
                for topic in topics
            )
        self._send_many(encoded)

    def _send_many(self, messages: Sequence[tuple[str, str]]) -> None:
        """Send encoded (topic, data) pairs; a transport that can batch them overrides this."""
        for topic, data in messages:
            self._send(topic, data)

    def joins_transaction(self, using: str) -> bool:
        """Whether `publish` now would ride the open transaction of database `using` (sent
        at its commit, dropped at its rollback) instead of going out at once."""
        return False

    async def apublish(self, topic: str, message: Message) -> None:
        await sync_to_async(self.publish)(topic, message)

    def subscribe(self, topic: str) -> Subscription:
        """Receive the messages published to `topic` from now on, until closed."""
        subscription = Subscription(self, topic)
        self._attach(subscription)
        return subscription

    async def asubscribe(self, topic: str) -> AsyncSubscription:
        """`subscribe` for async code: `async for message in await bus.asubscribe(t)`."""
        subscription = AsyncSubscription(self, topic, asyncio.get_running_loop())
        await sync_to_async(self._attach, thread_sensitive=False)(subscription)
        return subscription

    def unsubscribe(self, subscription: BaseSubscription) -> None:
        """Stop delivering to `subscription`; its readers see the end. Idempotent."""
        with self._subscribe_lock:
            with self._registry_lock:
                subscriptions = self._subscriptions.get(subscription.topic, [])
                attached = subscription in subscriptions
                if attached:
                    subscriptions.remove(subscription)
                    if not subscriptions:
                        del self._subscriptions[subscription.topic]
                last = attached and not subscriptions
            subscription._end()
            if last and not self._closed:
                try:
                    self._unlisten(subscription.topic)
                except Exception:
                    # Nothing is delivered to a topic without subscriptions anyway.
                    logger.warning(
                        "could not unsubscribe from %r", subscription.topic, exc_info=True
                    )

    def close(self) -> None:
        """End every subscription and release connections and threads."""
        with self._subscribe_lock:
            self._closed = True
            with self._registry_lock:
                ended = [s for subs in self._subscriptions.values() for s in subs]
                self._subscriptions.clear()
        for subscription in ended:
            subscription._end()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        """System-check problems with this bus's options or environment."""
        limit = options.get("max_payload_bytes")
        if limit is not None and _effective_limit(None, limit) is None:
            return [
                Error(
                    "DURABLE['MESSAGE_BUS_OPTIONS']['max_payload_bytes'] must be an int "
                    f">= 64, got {limit!r}.",
                    id="durable.E013",
                )
            ]
        return []

    # What adapters implement.

    @abstractmethod
    def _send(self, topic: str, data: str) -> None:
        """Put `data` (a JSON object, encoded) on the transport for `topic`."""

    def _listen(self, topic: str) -> None:  # noqa: B027  (in-process buses need nothing)
        """Start receiving `topic` (its first subscription here); return once effective."""

    def _unlisten(self, topic: str) -> None:  # noqa: B027
        """Stop receiving `topic` (its last subscription here ended)."""

    def _dispatch(self, topic: str, data: str) -> None:
        """Hand a received message to the topic's subscriptions; callable from any thread."""
        with self._registry_lock:
            subscriptions = list(self._subscriptions.get(topic, ()))
        for subscription in subscriptions:
            subscription._put(data)

    # Shared machinery.

    def _attach(self, subscription: BaseSubscription) -> None:
        _check_topic(subscription.topic)
        with self._subscribe_lock:
            if self._closed:
                raise MessageBusError(f"{type(self).__name__} is closed")
            with self._registry_lock:
                subscriptions = self._subscriptions.setdefault(subscription.topic, [])
                first = not subscriptions
                subscriptions.append(subscription)
            if not first:
                return
            try:
                self._listen(subscription.topic)
            except BaseException:
                with self._registry_lock:
                    self._subscriptions.pop(subscription.topic, None)
                raise

    def _parse(self, data: str) -> Message | None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            logger.warning("ignored a bus message that is not a JSON object: %.200r", data)
            return None
        return message

    def _load(self, payload_id: int) -> Message | None:
        payload = bus_payloads.load(payload_id, using=self.using)
        if payload is None:
            logger.warning(
                "bus payload %s is gone (deleted, or its transaction rolled back); message skipped",
                payload_id,
            )
        return payload

    def _decode(self, data: str) -> Message | None:
        message = self._parse(data)
        payload_id = _ref_id(message)
        return message if payload_id is None else self._load(payload_id)

    async def _adecode(self, data: str) -> Message | None:
        message = self._parse(data)
        payload_id = _ref_id(message)
        if payload_id is None:
            return message
        return await sync_to_async(self._load)(payload_id)


class BaseSubscription:
    """What the bus sees of a subscription: a topic and an inbox it can put into."""

    def __init__(self, bus: MessageBus, topic: str) -> None:
        self.bus = bus
        self.topic = topic

    def _put(self, data: str) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError


class Subscription(BaseSubscription):
    """The messages of one topic in publish order: iterate, or call `get(timeout)`."""

    def __init__(self, bus: MessageBus, topic: str) -> None:
        super().__init__(bus, topic)
        self._inbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def _put(self, data: str) -> None:
        self._inbox.put(data)

    def _end(self) -> None:
        self._inbox.put(None)

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message; None once `timeout` seconds pass or the subscription is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                data = self._inbox.get(timeout=remaining)
            except queue.Empty:
                return None
            if data is None:
                self._inbox.put(None)  # later calls end at once too
                return None
            message = self.bus._decode(data)
            if message is not None:
                return message

    def close(self) -> None:
        self.bus.unsubscribe(self)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Message:
        message = self.get()
        if message is None:
            raise StopIteration
        return message

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSubscription(BaseSubscription):
    """`Subscription` for async code; transports hand messages over to its event loop."""

    def __init__(self, bus: MessageBus, topic: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(bus, topic)
        self._loop = loop
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()

    def _put(self, data: str | None) -> None:
        # A closed loop means nobody is reading any more.
        with suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, data)

    def _end(self) -> None:
        self._put(None)

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message; None once `timeout` seconds pass or the subscription is closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                data = await asyncio.wait_for(self._inbox.get(), remaining)
            except TimeoutError:
                return None
            if data is None:
                self._inbox.put_nowait(None)
                return None
            message = await self.bus._adecode(data)
            if message is not None:
                return message

    async def aclose(self) -> None:
        await sync_to_async(self.bus.unsubscribe, thread_sensitive=False)(self)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _check_topic(topic: object) -> None:
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"a topic must be a non-empty str, got {topic!r}")


def _ref_id(message: object) -> int | None:
    if isinstance(message, dict) and len(message) == 1:
        value = message.get(REF_KEY)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _effective_limit(transport_limit: int | None, option: object) -> int | None:
    """The transport's limit, lowered by a valid `max_payload_bytes` option."""
    if isinstance(option, bool) or not isinstance(option, int) or option < 64:
        return transport_limit
    return option if transport_limit is None else min(option, transport_limit)
