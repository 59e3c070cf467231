"""Group commit: a worker's step threads checkpoint their successful steps together.

A step thread whose step succeeded hands its checkpoint to a committer thread and waits.
The committer takes whatever has gathered (only that one step on a quiet worker, so
nothing waits for company) and checkpoints it in one batch transaction
(durable.store.batch); the steps that finish meanwhile make the next batch. Under load each
step costs its share of one transaction instead of one of its own, and the worker's
database connections are the committer's and the claim loop's, not one per step thread.

Nothing is acknowledged before its batch commits, so a worker killed meanwhile loses only
uncommitted outcomes: their leases expire and the steps run again, as with lone
checkpoints.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from django.db import connections

from durable.engine.connections import close_stale_connections
from durable.store.batch import ALONE, Completion, Result, complete_steps

logger = logging.getLogger("durable.worker")


@dataclass(eq=False)
class _Entry:
    item: Completion
    result: Result = ALONE
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    def __init__(self, using: str, max_batch: int = 64, threads: int = 1) -> None:
        if max_batch < 1 or threads < 1:
            raise ValueError("max_batch and threads must be at least 1")
        self.using = using
        self.max_batch = max_batch
        self._ready = threading.Condition()
        self._queue: list[_Entry] = []
        self._closed = False
        self._started = False
        self._threads = [
            threading.Thread(target=self._commit_loop, name=f"durable-commit-{n}", daemon=True)
            for n in range(threads)
        ]

    def complete(self, item: Completion) -> Result:
        """Checkpoint `item` in the next batch; its Result (ALONE: checkpoint it alone)."""
        entry = _Entry(item)
        with self._ready:
            if self._closed:
                return ALONE
            if not self._started:
                # Started on first use: a worker whose steps never join a batch (SQLite,
                # or a worker made and never run) keeps no idle committer threads.
                self._started = True
                for thread in self._threads:
                    thread.start()
            self._queue.append(entry)
            self._ready.notify()
        entry.done.wait()
        return entry.result

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, then stop the committer threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        if not self._started:
            return
        for thread in self._threads:
            thread.join(timeout)

    def _commit_loop(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._closed:
                        self._ready.wait()
                    if not self._queue:
                        return  # closed, and nothing left to commit
                    batch = self._queue[: self.max_batch]
                    del self._queue[: self.max_batch]
                self._commit(batch)
        finally:
            connections.close_all()

    def _commit(self, batch: list[_Entry]) -> None:
        results: list[Result] = [ALONE] * len(batch)
        try:
            results = complete_steps([entry.item for entry in batch], using=self.using)
        except Exception as exc:
            # Nothing of it committed (or, if the commit's answer was lost, all of it): each
            # step is checkpointed alone by its thread, which meets the same error, if it
            # has to do with that step, where it is handled step by step.
            logger.warning("batch checkpoint of %d step(s) failed (%s)", len(batch), exc)
            close_stale_connections()
        finally:
            for entry, result in zip(batch, results, strict=True):
                entry.result = result
                entry.done.set()
