"""Group commit: a worker's step threads checkpoint their successful steps together.

A thread whose step succeeded hands its checkpoint here. When fewer than `max_leaders`
batches are committing, it commits one at once, holding whatever has gathered: only its
own step on a quiet worker, so nothing waits. Otherwise it waits: the steps that finish
meanwhile make the next batch, committed by the first of them that a finishing leader
wakes. Under load a batch holds what gathered during a commit, and each step costs its
share of one transaction (durable.store.batch) instead of one of its own; two batches in
flight keep the database busy while the threads of one wait for their commit.

Nothing is acknowledged before its batch commits, so a worker killed meanwhile loses only
uncommitted outcomes: their leases expire and the steps run again, as with lone
checkpoints.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from durable.store.batch import ALONE, Completion, Result, complete_steps

logger = logging.getLogger("durable.worker")


@dataclass(eq=False)
class _Entry:
    item: Completion
    result: Result = ALONE
    lead: bool = False  # asked to commit batches (set under the lock)
    # Set when the entry leads or has its result; `finished` only for the result.
    signal: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    def __init__(self, using: str, max_batch: int = 64, max_leaders: int = 1) -> None:
        if max_batch < 1 or max_leaders < 1:
            raise ValueError("max_batch and max_leaders must be at least 1")
        self.using = using
        self.max_batch = max_batch
        self.max_leaders = max_leaders
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        # Threads committing batches, or woken to: whenever it is below max_leaders, the
        # queue holds no entry that is not led.
        self._leaders = 0

    def complete(self, item: Completion) -> Result:
        """Checkpoint `item` in a batch; its Result (ALONE: checkpoint it alone)."""
        entry = _Entry(item)
        with self._lock:
            self._queue.append(entry)
            if self._leaders < self.max_leaders:
                self._leaders += 1
                entry.lead = True
        if not entry.lead:
            entry.signal.wait()
        if entry.lead:
            try:
                self._lead(entry)
            finally:
                self._hand_over()
        return entry.result

    def _lead(self, entry: _Entry) -> None:
        """Commit batches until `entry` has its result (it may be in another leader's)."""
        while not entry.finished.is_set():
            with self._lock:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            if batch:
                self._commit(batch)
            else:
                entry.finished.wait()

    def _commit(self, batch: list[_Entry]) -> None:
        results: list[Result] = [ALONE] * len(batch)
        try:
            results = complete_steps([entry.item for entry in batch], using=self.using)
        except Exception as exc:
            # Nothing of it committed (or, if the commit's answer was lost, all of it): each
            # step is checkpointed alone by its thread, which meets the same error, if it
            # has to do with that step, where it is handled step by step.
            logger.warning("batch checkpoint of %d step(s) failed (%s)", len(batch), exc)
        finally:
            for entry, result in zip(batch, results, strict=True):
                entry.result = result
                entry.finished.set()
                entry.signal.set()

    def _hand_over(self) -> None:
        """Pass this thread's leadership to the oldest waiting entry, if any."""
        with self._lock:
            following = next((entry for entry in self._queue if not entry.lead), None)
            if following is None:
                self._leaders -= 1
                return
            following.lead = True
        following.signal.set()
