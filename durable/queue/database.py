"""`DatabaseQueue`: ready tasks live in Durable's own table, on any Django database.

This is the embedded default (SQLite). Idle workers poll every `POLL_INTERVAL` seconds and
are woken at once by work made ready in their own process.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from durable.queue.base import Capabilities, QueueAdapter
from durable.store import claims, outbox
from durable.store.records import ClaimedTask


class DatabaseQueue(QueueAdapter):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_concurrent_claims=False, chains_claims=True
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        # Weak: a worker's event is dropped with the worker.
        self._waiters: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._lock = threading.Lock()
        outbox.add_wake_listener(self._wake_waiters)

    def _wake_waiters(self, queues: set[str] | None = None) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for event in waiters:
            event.set()

    def claim(
        self, queue: str, limit: int, *, worker_id: str, lease_seconds: float
    ) -> list[ClaimedTask]:
        return claims.claim_tasks(
            queue, limit, worker_id=worker_id, lease_seconds=lease_seconds, using=self.using
        )

    def nack(self, claim: ClaimedTask, until: datetime | None = None) -> None:
        claims.release(claim, using=self.using, until=until)

    def wait_for_work(self, queues: Sequence[str], timeout: float, wake: threading.Event) -> None:
        # `wake` stays registered after the wait: work announced while its worker claims or
        # does housekeeping sets it, and the next wait returns at once instead of sleeping
        # through the poll interval.
        with self._lock:
            self._waiters.add(wake)
        wake.wait(timeout)

    def close(self) -> None:
        outbox.remove_wake_listener(self._wake_waiters)
