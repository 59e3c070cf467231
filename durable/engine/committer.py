"""Committers: where a run's outcome goes to be checkpointed.

A worker's `Committer` is one thread with its own connection. Its steps, coroutines and
threads alike, hand their outcomes in and wait on a future; the thread records whatever
has gathered while the previous batch committed in one call of
`durable.store.checkpoint.apply` (only one outcome on a quiet worker, so nothing waits for
company), then tells the queue adapter and resolves the futures. A database that refuses
connections or drops them does not fail anything: the outcomes wait and are tried again
with backoff, their leases kept alive meanwhile by the worker's lease keeper.

`Inline` checkpoints at once on the caller's thread (an inline run, a test).

Nothing is acknowledged before its transaction commits, so a worker killed meanwhile loses
only uncommitted outcomes: their leases expire and the steps run again.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Protocol

from django.db import InterfaceError, OperationalError, connections

from durable.engine.connections import close_stale_connections
from durable.queue.base import QueueAdapter
from durable.store import checkpoint
from durable.store.outcomes import Outcome, Result, Settled

logger = logging.getLogger("durable.worker")

# Errors of the connection, not of the outcome: the same checkpoint may work on a retry.
TRANSIENT = (OperationalError, InterfaceError)
MAX_BACKOFF = 5.0


class Checkpointer(Protocol):
    def submit(self, outcome: Outcome) -> Future[Result]: ...


def tell_adapter(adapter: QueueAdapter, outcome: Outcome, result: Result) -> None:
    """After a checkpoint committed: the adapter may forget the claim (or hold it for its
    retry). Never raises: a broker that is away redelivers, and the claim is then found
    finished."""
    if not isinstance(result, Settled):
        return
    try:
        if result.retry_at is not None:
            adapter.reschedule(outcome.claim, result.retry_at)
        else:
            adapter.ack(outcome.claim)
    except Exception:
        logger.warning(
            "could not settle %s with the queue adapter", outcome.claim.step, exc_info=True
        )


class Inline:
    """Checkpoints each outcome at once, on the calling thread."""

    def __init__(self, adapter: QueueAdapter) -> None:
        self.adapter = adapter

    def submit(self, outcome: Outcome) -> Future[Result]:
        future: Future[Result] = Future()
        [result] = checkpoint.apply([outcome], using=self.adapter.using)
        tell_adapter(self.adapter, outcome, result)
        future.set_result(result)
        return future


class Committer:
    """`threads` committer threads (a connection each): while one waits for the database,
    the next batch is planned on another."""

    def __init__(self, adapter: QueueAdapter, max_batch: int = 64, threads: int = 1) -> None:
        if max_batch < 1 or threads < 1:
            raise ValueError("max_batch and threads must be at least 1")
        self.adapter = adapter
        self.max_batch = max_batch
        self.threads = threads
        self._ready = threading.Condition()
        self._queue: list[tuple[Outcome, Future[Result]]] = []
        self._closed = False
        self._threads: list[threading.Thread] = []

    @property
    def backlog(self) -> int:
        """Outcomes waiting for a transaction: a worker claims less while it is long."""
        return len(self._queue)

    def submit(self, outcome: Outcome) -> Future[Result]:
        future: Future[Result] = Future()
        with self._ready:
            if self._closed:
                # A step that outlived its worker's drain: its lease was given back, so a
                # checkpoint would be refused anyway.
                return Inline(self.adapter).submit(outcome)
            if not self._threads:
                # Started on first use: a worker that never checkpoints keeps no threads.
                self._threads = [
                    threading.Thread(
                        target=self._commit_loop, name=f"durable-commit-{n}", daemon=True
                    )
                    for n in range(self.threads)
                ]
                for thread in self._threads:
                    thread.start()
            self._queue.append((outcome, future))
            self._ready.notify()
        return future

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, then stop the threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _commit_loop(self) -> None:
        backoff = 0.05
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._closed:
                        self._ready.wait()
                    if not self._queue:
                        return  # closed, and nothing left to commit
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                retry = self._commit(batch)
                if not retry:
                    backoff = 0.05
                    continue
                with self._ready:
                    # First in line again: they waited longest.
                    self._queue[:0] = retry
                    closed = self._closed
                if closed:
                    self._give_up()
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            connections.close_all()

    def _commit(
        self, batch: list[tuple[Outcome, Future[Result]]]
    ) -> list[tuple[Outcome, Future[Result]]]:
        """Checkpoint `batch`; returns what met a connection error, to try again."""
        close_stale_connections()
        outcomes = [outcome for outcome, _ in batch]
        started = time.monotonic()
        try:
            results = checkpoint.apply(outcomes, using=self.adapter.using)
        except Exception as exc:
            results = [exc] * len(batch)
        logger.debug(
            "checkpointed %d outcome(s) in %.1f ms", len(batch), 1000 * (time.monotonic() - started)
        )
        retry = []
        for (outcome, future), result in zip(batch, results, strict=True):
            if isinstance(result, TRANSIENT):
                retry.append((outcome, future))
                continue
            tell_adapter(self.adapter, outcome, result)
            future.set_result(result)
        if retry:
            logger.warning(
                "could not checkpoint %d step(s) (%s); trying again",
                len(retry),
                next(r for r in results if isinstance(r, TRANSIENT)),
            )
            close_stale_connections()
        return retry

    def _give_up(self) -> None:
        """Closing with the database still away: the leases of what waits expire and the
        steps run again on a worker that reaches it."""
        with self._ready:
            waiting = self._queue[:]
            self._queue.clear()
        error = OperationalError("the worker stopped before the database came back")
        for _, future in waiting:
            future.set_result(error)
