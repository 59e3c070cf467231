"""`PostgresQueue`: the production default. Claims with `FOR UPDATE SKIP LOCKED`; idle
workers are woken by `LISTEN/NOTIFY` on a dedicated autocommit connection.

Notifications carry queue names only. The listener probes itself at start (it sends a
NOTIFY and waits for it); if notifications do not arrive (a pooler in transaction mode,
say) it logs a warning and the worker keeps working by polling. After a lost connection
it reconnects, re-LISTENs and wakes the worker, since notifications may have been missed.
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

from durable.queue.database import DatabaseQueue
from durable.queue.base import Capabilities
from durable.store.notify import CHANNEL

logger = logging.getLogger("durable.queue")

PROBE_TIMEOUT = 2.0


class PostgresQueue(DatabaseQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(supports_push_wakeup=True)

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.listening = False
        self.push_works = False
        self._probe = f"probe:{uuid.uuid4()}"
        self._probe_seen = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_listening(self) -> bool:
        """Start the LISTEN thread; return whether the self-probe arrived."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen_forever, name="durable-listen",
                                            daemon=True)
            self._thread.start()
        self.push_works = self._probe_seen.wait(PROBE_TIMEOUT)
        if not self.push_works:
            logger.warning("LISTEN/NOTIFY probe did not arrive within %.0fs; falling back to "
                           "polling", PROBE_TIMEOUT)
        return self.push_works

    def _connect(self) -> psycopg.Connection[Any]:
        params = connections[self.using].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("server_side_binding", None)
        return psycopg.connect(**params, autocommit=True)

    def _listen_forever(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, self._probe])
                    self.listening = True
                    backoff = 0.5
                    # Anything may have been announced while we were not listening.
                    self._wake_waiters()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.payload == self._probe:
                                self._probe_seen.set()
                            else:
                                self._wake_waiters()
            except psycopg.Error as exc:
                self.listening = False
                if self._stop.is_set():
                    return
                logger.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def wait_for_work(self, queues: Sequence[str], timeout: float, wake: threading.Event) -> None:
        if self._thread is None:
            self.start_listening()
        super().wait_for_work(queues, timeout, wake)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        super().close()
