"""`PollingBus`: the subscriber side is one connection owned by one background thread.

Callers never touch that connection. They record which transport names they want and
wait until the thread has applied the change (it does between polls, every `tick` seconds
at most; an adapter whose poll can also watch `wakeup_socket` applies it at once, see
PostgresBus). After a lost connection the thread reconnects with backoff and subscribes to
every wanted name again; messages published while it was away are lost, as in any
pub/sub.
"""

from __future__ import annotations

import logging
import socket
import threading
from abc import abstractmethod
from collections.abc import Iterable
from contextlib import suppress
from typing import Any, ClassVar

from durable.bus.base import SUBSCRIBE_TIMEOUT, MessageBus, MessageBusError

logger = logging.getLogger("durable.bus")

MAX_BACKOFF = 10.0


class PollingBus(MessageBus):
    # How long one poll of the connection may block; bounds subscribe latency and close.
    tick: ClassVar[float] = 0.1

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self._wanted: dict[str, str] = {}  # transport name -> topic
        self._version = 0  # bumped on every change to `_wanted`
        self._applied = -1  # the version the listener thread has made effective
        self._connected = False
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: BaseException | None = None
        # Written to when `_wanted` changes or the bus closes, so a poll that watches it
        # returns at once instead of at the end of its tick.
        self._wakeup_reader, self._wakeup_writer = socket.socketpair()
        self._wakeup_reader.setblocking(False)
        self._wakeup_writer.setblocking(False)

    @abstractmethod
    def transport_name(self, topic: str) -> str:
        """The channel, routing key... this transport uses for `topic`."""

    @abstractmethod
    def _connect(self) -> Any:
        """Open the subscriber connection."""

    @abstractmethod
    def _add(self, connection: Any, name: str) -> None:
        """Subscribe `connection` to `name`; return once messages to it will arrive."""

    @abstractmethod
    def _remove(self, connection: Any, name: str) -> None:
        """Unsubscribe `connection` from `name`."""

    @abstractmethod
    def _receive(self, connection: Any, timeout: float) -> Iterable[tuple[str, str]]:
        """Wait up to `timeout` seconds; return what arrived as (name, data) pairs."""

    @abstractmethod
    def _disconnect(self, connection: Any) -> None:
        """Close the subscriber connection."""

    def _listen(self, topic: str) -> None:
        if not self._change(self.transport_name(topic), topic):
            raise MessageBusError(
                f"{type(self).__name__} could not subscribe to {topic!r} within "
                f"{SUBSCRIBE_TIMEOUT:.0f}s: {self._last_error or 'no connection'}"
            )

    def _unlisten(self, topic: str) -> None:
        # Waiting makes unsubscribing final: a later subscription of the topic cannot
        # receive what was published before it, through the old transport subscription.
        # Without a connection there is nothing to wait for: a new one starts clean.
        self._change(self.transport_name(topic), None)

    def _change(self, name: str, topic: str | None) -> bool:
        """Want `name` (for `topic`) or, with None, stop wanting it; wait until effective."""
        with self._changed:
            if topic is None:
                self._wanted.pop(name, None)
            else:
                self._wanted[name] = topic
            self._version += 1
            target = self._version
            self._start_thread()
            self._wake()
            applied = self._changed.wait_for(
                lambda: self._applied >= target or (topic is None and not self._connected),
                SUBSCRIBE_TIMEOUT,
            )
            if not applied and topic is not None:
                del self._wanted[name]
                self._version += 1
            return applied

    @property
    def wakeup_socket(self) -> socket.socket:
        """Readable when the listener thread has something to apply; see `clear_wakeups`."""
        return self._wakeup_reader

    def clear_wakeups(self) -> None:
        try:
            while self._wakeup_reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass  # nothing (more) to read

    def _wake(self) -> None:
        # A full buffer already holds a wake-up; a closed one has nobody to wake.
        with suppress(OSError):
            self._wakeup_writer.send(b"\0")

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"durable-bus-{type(self).__name__}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            connection = None
            try:
                connection = self._connect()
                backoff = 0.5
                self._serve(connection)
            except Exception as exc:
                # A lost connection or a server that is down: keep trying until closed.
                self._last_error = exc
                with self._changed:
                    self._connected = False
                    self._changed.notify_all()
                if self._stop.is_set():
                    break
                logger.warning(
                    "%s connection lost (%s); reconnecting in %.1fs",
                    type(self).__name__,
                    exc,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                if connection is not None:
                    with suppress(Exception):
                        self._disconnect(connection)

    def _serve(self, connection: Any) -> None:
        active: set[str] = set()
        while not self._stop.is_set():
            with self._changed:
                wanted = dict(self._wanted)
                version = self._version
            for name in sorted(active - wanted.keys()):
                self._remove(connection, name)
                active.discard(name)
            for name in sorted(wanted.keys() - active):
                self._add(connection, name)
                active.add(name)
            with self._changed:
                self._applied = version
                self._connected = True
                self._changed.notify_all()
            for name, data in self._receive(connection, self.tick):
                topic = wanted.get(name)
                if topic is not None:
                    self._dispatch(topic, data)

    def close(self) -> None:
        super().close()
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._wakeup_reader.close()
        self._wakeup_writer.close()
