"""`PostgresQueue`: the production default. Claims with `FOR UPDATE SKIP LOCKED`; idle
workers are woken by `LISTEN/NOTIFY` on a dedicated autocommit connection.

Notifications carry queue names only. The listener starts in the background on the
first idle wait and probes itself (it sends a NOTIFY and logs "LISTEN/NOTIFY wake-up
active" when it arrives); if the probe does not arrive (a pooler in transaction mode, say)
it logs a warning and the worker keeps working by polling. After a lost connection it
reconnects, re-LISTENs and wakes the worker, since notifications may have been missed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg
from django.db import connections

from durable.queue.base import Capabilities
from durable.queue.database import DatabaseQueue
from durable.store.outbox import CHANNEL

logger = logging.getLogger("durable.queue")

PROBE_TIMEOUT = 2.0
PROBE_PREFIX = "probe:"
# How often the listener checks whether it should stop; bounds how long `close` takes.
LISTEN_TICK = 0.25


class PostgresQueue(DatabaseQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_push_wakeup=True, chains_claims=True
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.listening = False
        self.push_works = False
        self._probe = f"{PROBE_PREFIX}{uuid.uuid4()}"
        self._probe_warned = False
        self._probe_seen = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_listening(self) -> bool:
        """Start the LISTEN thread; wait for the self-probe and return whether it arrived."""
        self._ensure_listener()
        return self._probe_seen.wait(PROBE_TIMEOUT)

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._listen_forever, name="durable-listen", daemon=True
            )
        self._thread.start()

    def _connect(self) -> psycopg.Connection[Any]:
        params = connections[self.using].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("server_side_binding", None)
        return psycopg.connect(**params, autocommit=True)

    def _listen_forever(self) -> None:
        backoff = 0.5
        lost = False
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, self._probe])
                    probe_sent = time.monotonic()
                    self.listening = True
                    backoff = 0.5
                    if lost:
                        lost = False
                        logger.info("LISTEN connection re-established on channel %s", CHANNEL)
                    # Anything may have been announced while we were not listening.
                    self._wake_waiters()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TICK):
                            self._on_notification(note.payload)
                        self._warn_if_probe_lost(probe_sent)
            except Exception as exc:
                # psycopg errors (a lost connection) and bad connection settings alike:
                # the worker keeps polling meanwhile, so keep trying instead of dying.
                self.listening = False
                lost = True
                if self._stop.is_set():
                    return
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _on_notification(self, payload: str) -> None:
        if payload == self._probe:
            if not self._probe_seen.is_set():
                self._probe_seen.set()
                self.push_works = True
                logger.info("LISTEN/NOTIFY wake-up active on channel %s", CHANNEL)
        elif not payload.startswith(PROBE_PREFIX):  # other processes' probes carry no work
            self._wake_waiters()

    def _warn_if_probe_lost(self, probe_sent: float) -> None:
        if self._probe_seen.is_set() or self._probe_warned:
            return
        if time.monotonic() - probe_sent >= PROBE_TIMEOUT:
            self._probe_warned = True
            logger.warning(
                "LISTEN/NOTIFY probe did not arrive within %.0fs (a connection "
                "pooler in transaction mode?); relying on polling",
                PROBE_TIMEOUT,
            )

    def wait_for_work(self, queues: Sequence[str], timeout: float, wake: threading.Event) -> None:
        # Never blocks: until the listener is up, the poll timeout bounds the wait.
        self._ensure_listener()
        super().wait_for_work(queues, timeout, wake)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        super().close()
