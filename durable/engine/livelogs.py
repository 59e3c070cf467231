"""Live log lines: a running step attempt's captured lines, stored while it runs.

One daemon thread per worker process wakes every `FLUSH_INTERVAL` seconds and writes the
new lines of each attempt that has run for at least `FIRST_FLUSH_AFTER` seconds to the
attempt's StepExecution row, so `durable.stream_logs`, `get_step_logs` and the dashboard
see a long step's lines before it ends. A step that ends sooner, or logs nothing new, costs
no query: registering is a set insert. The checkpoint still writes the complete list.

Writes are fenced like progress reports (the row must still be running, under our lease)
and never fail the step: a database error is logged and the lines wait for the next pass
or the checkpoint. Transactional steps are not flushed: their row is written in the
step's own transaction, and a second connection writing it would wait on that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from django.db import InterfaceError, OperationalError, connections

from durable.engine.logcapture import StepLog
from durable.store.livelogs import earlier_logs, resumes_attempt, store_running_logs
from durable.store.records import ClaimedTask

logger = logging.getLogger("durable.worker")

FLUSH_INTERVAL = 0.5  # seconds between passes of the flusher thread
FIRST_FLUSH_AFTER = 1.0  # an attempt's lines are first stored once it ran this long


class _Live:
    """One running attempt whose lines the flusher follows."""

    def __init__(self, log: StepLog, claim: ClaimedTask, using: str) -> None:
        self.log = log
        self.claim = claim
        self.using = using
        self.due = time.monotonic() + FIRST_FLUSH_AFTER
        self.resumed = resumes_attempt(claim)
        self.earlier: list[dict[str, Any]] | None = None  # a resumed run's earlier lines
        self.flushed = 0
        self.stopped = False
        # Held while this attempt's lines are written: stopping waits for a write under
        # way, so `log.stored` is settled before the checkpoint reads it.
        self.lock = threading.Lock()


class LogFlusher:
    def __init__(self) -> None:
        self._live: set[_Live] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def following(self, log: StepLog, claim: ClaimedTask, using: str) -> Iterator[None]:
        """Store `log`'s new lines on the attempt's row while the block runs."""
        live = _Live(log, claim, using)
        with self._lock:
            self._live.add(live)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="durable-log-flusher", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._live.discard(live)
            with live.lock:
                live.stopped = True

    def _run(self) -> None:
        connected = False
        while True:
            time.sleep(FLUSH_INTERVAL)
            now = time.monotonic()
            with self._lock:
                idle = not self._live
                due = [live for live in self._live if live.due <= now]
            if idle and connected:
                # Nothing to follow: give the connection back (a database being dropped,
                # a test database say, must not find it open).
                connections.close_all()
                connected = False
            for live in due:
                connected = self.flush(live) or connected

    def flush(self, live: _Live) -> bool:
        """Write `live`'s new lines, if any, to its row; never raises. True when it used
        the database."""
        with live.lock:
            if live.stopped:
                return False
            entries = live.log.snapshot()
            if len(entries) == live.flushed:
                return False
            claim = live.claim
            try:
                if live.resumed and live.earlier is None:
                    live.earlier = earlier_logs(claim, live.using)
                    if live.earlier is None:
                        live.stopped = True
                        return True
                logs = [*live.earlier, *entries] if live.earlier is not None else entries
                stored = store_running_logs(claim, logs, live.using)
            except Exception as exc:
                logger.warning(
                    "could not store the log lines of step %r of %s so far; they are "
                    "stored at its checkpoint",
                    claim.step,
                    claim.workflow_id,
                    exc_info=True,
                )
                if isinstance(exc, OperationalError | InterfaceError):
                    _close(live.using)  # a broken connection must not fail every pass
                return True
            if not stored:
                live.stopped = True  # finished, parked or retaken: nothing more to write
                return True
            live.flushed = len(entries)
            if live.resumed:
                live.log.stored = len(entries)
            return True


flusher = LogFlusher()


def following(log: StepLog, claim: ClaimedTask, using: str) -> AbstractContextManager[None]:
    """`flusher.following`, or nothing when the step's connection is inside a transaction
    (a transactional step, an inline run in a test's transaction): its row's state there
    is not what other connections see, and writing it from another would wait on it."""
    if connections[using].in_atomic_block:
        return nullcontext()
    return flusher.following(log, claim, using)


def _close(using: str) -> None:
    """Close this thread's connection after a connection error (the next query opens a
    new one)."""
    try:
        connections[using].close()
    except Exception:
        logger.debug("closing the log flusher's connection failed", exc_info=True)
