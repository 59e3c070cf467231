"""`NatsBus`: core NATS publish/subscribe (`durable[nats]`). Options: `url` (default
nats://127.0.0.1:4222).

A topic is a subject (`durable.bus.<topic>`, or a digest of the topic when it has
characters or empty tokens a subject cannot have). One connection per bus carries both
publishes and subscriptions, so a message published before `subscribe()` can never reach
that subscription through a faster path; `subscribe` returns once the server has
acknowledged the SUB (a flush round trip), so a message published from anywhere after it
returns is delivered. Messages over 1 MiB (NATS's default `max_payload`) go by reference.
nats-py reconnects on its own and subscribes again; what is published while it is away is
lost, as in any pub/sub. nats-py is asyncio: the client runs on an event loop thread of
its own, and received messages are handed to the subscriptions from there.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from typing import Any, ClassVar, TypeVar

import nats
from django.core.checks import CheckMessage, Error

from durable.bus.base import Capabilities, MessageBus, MessageBusError, transport_name

logger = logging.getLogger("durable.bus")

DEFAULT_URL = "nats://127.0.0.1:4222"
# Subject tokens: no spaces, no wildcards (`*`, `>`), none empty.
SUBJECT = re.compile(r"[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*")
MAX_SUBJECT_LENGTH = 255
TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0

T = TypeVar("T")


class NatsBus(MessageBus):
    capabilities: ClassVar[Capabilities] = Capabilities(max_payload_bytes=1024 * 1024)

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="durable-bus-nats", daemon=True
        )
        self._thread.start()
        self._client: Any = None
        self._last_error: Exception | None = None
        self._subs: dict[str, Any] = {}  # subject -> nats subscription

    def transport_name(self, topic: str) -> str:
        return transport_name(topic, max_length=MAX_SUBJECT_LENGTH, allowed=SUBJECT)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT)

    async def _connected(self) -> Any:
        if self._client is None or self._client.is_closed:
            connecting = nats.connect(
                self.url,
                name="durable-bus",
                # Once connected, reconnect for as long as it takes (subscriptions resume).
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=self._on_error,
            )
            try:
                # The first connection is awaited for a while only: a server that is down
                # is an error for the caller, not a wait without end.
                self._client = await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
            except TimeoutError:
                raise MessageBusError(
                    f"NatsBus could not connect to {self.url} within {CONNECT_TIMEOUT:.0f}s: "
                    f"{self._last_error or 'no answer'}"
                ) from None
        return self._client

    async def _on_error(self, error: Exception) -> None:
        # Reconnecting retries twice a second: log a problem once, not at every try.
        if str(error) != str(self._last_error):
            logger.warning("NatsBus (%s): %s", self.url, error)
        self._last_error = error

    def _send(self, topic: str, data: str) -> None:
        self._send_many([(topic, data)])

    def _send_many(self, messages: Sequence[tuple[str, str]]) -> None:
        # One hop to the loop thread for the lot (the engine publishes events in batches).
        encoded = [(self.transport_name(topic), data.encode()) for topic, data in messages]

        async def publish() -> None:
            client = await self._connected()
            for subject, payload in encoded:
                await client.publish(subject, payload)

        self._call(publish())

    def _listen(self, topic: str) -> None:
        subject = self.transport_name(topic)

        async def deliver(message: Any) -> None:
            self._dispatch(topic, message.data.decode())

        async def subscribe() -> None:
            client = await self._connected()
            self._subs[subject] = await client.subscribe(subject, cb=deliver)
            # The server has the SUB once it answered a PING sent after it.
            await client.flush(timeout=TIMEOUT)

        self._call(subscribe())

    def _unlisten(self, topic: str) -> None:
        subject = self.transport_name(topic)

        async def unsubscribe() -> None:
            subscription = self._subs.pop(subject, None)
            if subscription is not None and not self._client.is_closed:
                await subscription.unsubscribe()
                await self._client.flush(timeout=TIMEOUT)

        self._call(unsubscribe())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        super().close()

        async def shutdown() -> None:
            if self._client is not None and not self._client.is_closed:
                # Publishes still in the client's buffer go out before the socket closes
                # (unless the server is gone: then they are lost, as any pub/sub's are).
                with suppress(Exception):
                    await self._client.flush(timeout=TIMEOUT)
                await self._client.close()

        try:
            self._call(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        url = options.get("url", DEFAULT_URL)
        if not isinstance(url, str) or not url.startswith(("nats://", "tls://")):
            messages.append(
                Error(
                    "DURABLE['MESSAGE_BUS_OPTIONS']['url'] must be a nats:// or tls:// URL, "
                    f"got {url!r}.",
                    id="durable.E013",
                )
            )
        return messages
