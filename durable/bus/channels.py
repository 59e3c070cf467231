"""`ChannelsBus`: the Channels layer's groups. Options: `alias` (default "default").

The bus builds its own instance of the configured layer and drives it from its own event
loop thread: a layer refuses to `receive()` from two event loops at once, and the project's
consumers already receive on the shared instance. A topic is a group; this process's
instance joins it with one channel, and the bus copies each message to the topic's
subscriptions. Groups expire on the layer (`group_expiry`), so memberships are renewed at
half that interval. The layer drops messages to a channel that is over `capacity`; the
receive loop keeps the channel drained, but a burst beyond it is lost. With
`InMemoryChannelLayer`, messages stay inside this bus instance.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, ClassVar, TypeVar

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings
from django.core.checks import CheckMessage, Error

from durable.bus.base import SUBSCRIBE_TIMEOUT, Capabilities, MessageBus, transport_name

logger = logging.getLogger("durable.bus")

T = TypeVar("T")

MESSAGE_TYPE = "durable.bus.message"
STOP_TYPE = "durable.bus.stop"
GROUP_CHARS = re.compile(r"[A-Za-z0-9_.-]+")
MAX_GROUP_LENGTH = 99  # Channels requires names shorter than 100 characters


class ChannelsBus(MessageBus):
    capabilities: ClassVar[Capabilities] = Capabilities(max_payload_bytes=1024 * 1024)

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.alias = str(self.options.get("alias", DEFAULT_CHANNEL_LAYER))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Owned by the loop thread.
        self._layer: Any = None
        self._channel: str | None = None
        self._groups: dict[str, str] = {}  # group -> topic
        self._tasks: list[asyncio.Task[None]] = []  # the receive loop, the group renewal
        self._stopping = False

    def group_name(self, topic: str) -> str:
        return transport_name(topic, max_length=MAX_GROUP_LENGTH, allowed=GROUP_CHARS)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._start_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="durable-bus-ChannelsBus", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(SUBSCRIBE_TIMEOUT)

    def _get_layer(self) -> Any:
        if self._layer is None:
            self._layer = channel_layers.make_backend(self.alias)
        return self._layer

    def _send(self, topic: str, data: str) -> None:
        self._run(self._group_send(topic, data))

    async def _group_send(self, topic: str, data: str) -> None:
        message = {"type": MESSAGE_TYPE, "topic": topic, "data": data}
        await self._get_layer().group_send(self.group_name(topic), message)

    def _listen(self, topic: str) -> None:
        self._run(self._join(topic))

    async def _join(self, topic: str) -> None:
        layer = self._get_layer()
        if self._channel is None:
            self._channel = await layer.new_channel()
            self._tasks = [
                asyncio.create_task(self._receive_forever(self._channel)),
                asyncio.create_task(self._renew_groups(self._channel)),
            ]
        group = self.group_name(topic)
        await layer.group_add(group, self._channel)
        self._groups[group] = topic

    def _unlisten(self, topic: str) -> None:
        self._run(self._leave(topic))

    async def _leave(self, topic: str) -> None:
        group = self.group_name(topic)
        self._groups.pop(group, None)
        if self._channel is not None:
            await self._get_layer().group_discard(group, self._channel)

    async def _receive_forever(self, channel: str) -> None:
        backoff = 0.5
        while True:
            try:
                message = await self._layer.receive(channel)
            except Exception as exc:
                if self._stopping:
                    return
                logger.warning("ChannelsBus receive failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                await self._rejoin(channel)
                continue
            backoff = 0.5
            if message.get("type") == STOP_TYPE:
                return
            topic, data = message.get("topic"), message.get("data")
            if (
                message.get("type") == MESSAGE_TYPE
                and isinstance(topic, str)
                and isinstance(data, str)
            ):
                self._dispatch(topic, data)

    async def _renew_groups(self, channel: str) -> None:
        interval = float(getattr(self._layer, "group_expiry", 86400)) / 2
        while True:
            await asyncio.sleep(interval)
            await self._rejoin(channel)

    async def _rejoin(self, channel: str) -> None:
        for group in list(self._groups):
            try:
                await self._layer.group_add(group, channel)
            except Exception as exc:
                logger.warning("ChannelsBus could not rejoin group %s (%s)", group, exc)

    def close(self) -> None:
        super().close()
        with self._start_lock:
            loop, thread, self._loop = self._loop, self._thread, None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(SUBSCRIBE_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._channel is not None:
            with suppress(Exception):  # a layer that is down has nothing to clean up
                for group in list(self._groups):
                    await self._layer.group_discard(group, self._channel)
                # Wake the receive loop with a message instead of cancelling it: the Redis
                # client can turn a cancelled read into a timeout error.
                await self._layer.send(self._channel, {"type": STOP_TYPE})
            await asyncio.wait(self._tasks[:1], timeout=2)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._groups.clear()
        close_pools = getattr(self._layer, "close_pools", None)
        if close_pools is not None:
            await close_pools()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        alias = options.get("alias", DEFAULT_CHANNEL_LAYER)
        if alias not in getattr(settings, "CHANNEL_LAYERS", {}):
            messages.append(
                Error(
                    f"ChannelsBus uses the channel layer {alias!r}, which is not in "
                    "CHANNEL_LAYERS.",
                    hint="configure it, e.g. channels_redis.core.RedisChannelLayer.",
                    id="durable.E013",
                )
            )
        return messages
