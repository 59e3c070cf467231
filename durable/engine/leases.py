"""The lease keeper: a worker's leases renewed on a thread of their own.

A claimed task stays the worker's only while its lease is renewed. The keeper is a plain
thread with its own connection, apart from the event loop and the step threads, so
neither a loop busy with a thousand coroutines nor a pool of slow sync steps can keep it
from renewing: a lease lapses only when the process is gone (or the database is away).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.db import connections

from durable.engine.connections import close_stale_connections
from durable.store import claims
from durable.store.records import ClaimedTask

logger = logging.getLogger("durable.worker")


class LeaseKeeper:
    def __init__(
        self,
        held: Callable[[], Sequence[ClaimedTask]],
        *,
        worker_id: str,
        lease_seconds: float,
        using: str,
        lost: Callable[[list[ClaimedTask]], None] | None = None,
    ) -> None:
        self._held = held
        # Told of the claims whose leases were gone when renewed: the execution was
        # cancelled, or another worker took the task over.
        self._lost = lost
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.using = using
        # Renewed three times per lease: two renewals may fail before a lease lapses.
        self.interval = lease_seconds / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="durable-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def renew(self) -> int:
        """Renew the leases held now, and tell the worker is alive; how many were ours."""
        held = list(self._held())
        renewed = claims.heartbeat(
            held, lease_seconds=self.lease_seconds, using=self.using, worker_id=self.worker_id
        )
        lost = [claim for claim in held if claim.task_id not in renewed]
        if lost and self._lost is not None:
            self._lost(lost)
        return len(renewed)

    def _keep(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                started = time.monotonic()
                try:
                    close_stale_connections()
                    self.renew()
                except Exception as exc:
                    logger.warning("could not renew leases (%s); trying again", exc)
                    close_stale_connections()
                    # Sooner than the interval: the leases are running out.
                    self._stop.wait(min(1.0, self.interval))
                    continue
                took = time.monotonic() - started
                if took > self.interval:
                    logger.warning(
                        "renewing leases took %.1fs (interval %.1fs)", took, self.interval
                    )
        finally:
            connections.close_all()
