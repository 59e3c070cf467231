"""Lanes: the worker's own database connections, each owned by one thread.

Django's connections belong to the thread that opened them. A worker runs each kind of
its own database work (claims, leases, checkpoints, side writes) on a thread of its own,
a lane, so it holds a fixed handful of connections however many steps are in flight:
steps, sync or async, never open one for Durable. Work handed to a lane runs in order.

`Direct` is the lane of an inline run (`durable.testing`, `execute` in tests): the work
runs at once on the calling thread and its connection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from django.db import connections

from durable.engine.connections import close_stale_connections

T = TypeVar("T")


class Db(Protocol):
    """Where the engine runs a piece of its own database work."""

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` there and return its result (blocking the caller)."""
        ...

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Start `fn(*args)` there; its future."""
        ...


class Direct:
    """Runs database work on the calling thread."""

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future


DIRECT = Direct()


def _run(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    # A connection left broken by the previous piece of work is replaced, not reused.
    close_stale_connections()
    try:
        return fn(*args)
    finally:
        close_stale_connections()


class Lane:
    """One thread, one connection: runs what it is handed, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"durable-{name}")
        self._thread_ident: int | None = None
        self._executor.submit(self._remember_thread).result()

    def _remember_thread(self) -> None:
        self._thread_ident = threading.get_ident()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        if threading.get_ident() == self._thread_ident:
            return fn(*args)  # already on the lane: waiting for itself would never end
        return self._executor.submit(_run, fn, args).result()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(_run, fn, args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the lane, awaited from the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self, *, wait: bool = True) -> None:
        """Close the lane's connection and stop its thread once queued work is done."""
        try:
            self._executor.submit(connections.close_all)
        except RuntimeError:
            return  # closed already
        self._executor.shutdown(wait=wait)
