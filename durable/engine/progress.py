"""The `progress_hook` of a step's Context: throttled writes of `ctx.progress()` reports."""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future

from durable.engine.lanes import Db
from durable.store.progress import record_progress

logger = logging.getLogger("durable.worker")

# At most this many writes per second per attempt; the last report always lands when the
# step reports completion (done == total).
MAX_WRITES_PER_SECOND = 4


class ProgressReporter:
    """Hands reports to `db` (a worker's side lane) without waiting for them: a step,
    on the event loop or a pool thread, never blocks on a progress write."""

    def __init__(
        self, execution_pk: int, step: str, scope_key: str, attempt: int, using: str, db: Db
    ) -> None:
        self._key = (execution_pk, step, scope_key, attempt)
        self._using = using
        self._db = db
        self._last_write = -math.inf

    def __call__(self, done: float, total: float | None) -> None:
        for value in (done, total):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise TypeError(f"progress values must be finite numbers, got {value!r}")
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last_write < 1 / MAX_WRITES_PER_SECOND:
            return
        self._last_write = now
        execution_pk, step, scope_key, attempt = self._key
        written = self._db.submit(
            record_progress,
            execution_pk,
            step,
            scope_key,
            attempt,
            {"done": done, "total": total},
            self._using,
        )
        written.add_done_callback(_report_failure)


def _report_failure(written: Future[None]) -> None:
    error = written.exception()
    if error is not None:
        logger.warning("could not store a progress report: %s", error)
