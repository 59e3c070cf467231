"""Per-step capture of logging records and of what steps print.

A context variable names the step attempt the current code runs for. A wrapper around
`Logger.callHandlers` and proxies over `sys.stdout`/`sys.stderr` route each record or line to that
attempt's `StepLog`; code running for no step (the worker itself) is untouched. Threads
each have their own context and every asyncio task gets a copy, so steps running at once
in one worker never see each other's lines. Printed text still reaches the console.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from durable.store.records import storable_text

TRUNCATED_STREAM = "durable"


class StepLog:
    """The captured lines of one step attempt, capped at `max_bytes` of message text."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: list[dict[str, Any]] = []
        self._size = 0
        self._dropped_lines = 0
        self._dropped_bytes = 0
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()
        # How many leading entries a live flush already appended to the attempt's row
        # (a run resumed after a wait appends to it): `finish` leaves them out.
        self.stored = 0

    def snapshot(self) -> list[dict[str, Any]]:
        """The whole lines captured so far (a copy, safe to read from another thread)."""
        with self._lock:
            return list(self.entries)

    def add(
        self, *, level: str, message: str, logger: str, stream: str, keep: bool = False
    ) -> None:
        """Add one entry; `keep` adds it even over the cap (a failure's traceback)."""
        message = storable_text(message)
        size = len(message.encode("utf-8"))
        with self._lock:
            if not keep and self._size + size > self.max_bytes:
                self._dropped_lines += 1
                self._dropped_bytes += size
                return
            self._size += size
            self.entries.append(
                {
                    "timestamp": datetime.now(UTC).isoformat(),
                    "level": level,
                    "message": message,
                    "logger": logger,
                    "stream": stream,
                }
            )

    def write(self, stream: str, text: str) -> None:
        """Text printed to `stream`: whole lines become entries, the rest waits for more."""
        with self._lock:
            buffered = self._partial.get(stream, "") + text
            *lines, rest = buffered.split("\n")
            self._partial[stream] = rest
        level = "ERROR" if stream == "stderr" else "INFO"
        for line in lines:
            self.add(level=level, message=line, logger=stream, stream=stream)

    def finish(self) -> list[dict[str, Any]]:
        """Flush unterminated output and mark truncation; return the entries the
        checkpoint writes (all of them, less those a live flush appended already)."""
        for stream, rest in list(self._partial.items()):
            if rest:
                self.add(
                    level="ERROR" if stream == "stderr" else "INFO",
                    message=rest,
                    logger=stream,
                    stream=stream,
                )
        self._partial.clear()
        if self._dropped_lines:
            self.entries.append(
                {
                    "timestamp": datetime.now(UTC).isoformat(),
                    "level": "WARNING",
                    "message": f"log truncated: {self._dropped_lines} more line(s), "
                    f"{self._dropped_bytes} bytes, over the {self.max_bytes}-byte "
                    "cap per attempt (DURABLE['STEP_LOG_MAX_BYTES'])",
                    "logger": "durable",
                    "stream": TRUNCATED_STREAM,
                    "truncated": True,
                }
            )
            self._dropped_lines = 0
        return self.entries[self.stored :]


current_log: ContextVar[StepLog | None] = ContextVar("durable_step_log", default=None)
# Set while a captured record's handlers run, so their console output is not captured again.
_handling: ContextVar[bool] = ContextVar("durable_log_handling", default=False)
_call_handlers = logging.Logger.callHandlers


def _capture_and_call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
    """`Logger.callHandlers`, copying the record into the current step's log first.

    It runs on the logger a record was made for, once the logger's level and filters let it
    through, whatever its handlers and `propagate` (Django projects often stop their app
    loggers from propagating to the root logger, where a handler would miss them). What the
    handlers then write to the console (or the `lastResort` handler, when there is none) is
    not captured a second time as printed output.
    """
    log = current_log.get()
    if log is None or _handling.get():
        _call_handlers(logger, record)
        return
    log.add(level=record.levelname, message=_message(record), logger=record.name, stream="logging")
    token = _handling.set(True)
    try:
        _call_handlers(logger, record)
    finally:
        _handling.reset(token)


def _message(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
    except Exception:
        message = f"(unformattable log record: {record.msg!r})"
    return message


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: writes through, and copies into the step log."""

    def __init__(self, wrapped: TextIO, name: str) -> None:
        self.wrapped = wrapped
        self.name_ = name

    def write(self, text: str) -> int:
        written = self.wrapped.write(text)
        log = current_log.get()
        if log is not None and not _handling.get():
            log.write(self.name_, text)
        return written

    def flush(self) -> None:
        self.wrapped.flush()

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    def fileno(self) -> int:
        return self.wrapped.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.wrapped, "encoding", "utf-8"))


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Route logging and sys.stdout/sys.stderr through the capture (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            logging.Logger.callHandlers = _capture_and_call_handlers  # type: ignore[method-assign,assignment]
            _installed = True
        # Checked every time: a test runner may have swapped the streams since.
        if not isinstance(sys.stdout, _StreamProxy):
            sys.stdout = _StreamProxy(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _StreamProxy):
            sys.stderr = _StreamProxy(sys.stderr, "stderr")


@contextmanager
def capturing(log: StepLog) -> Iterator[StepLog]:
    """Send what this thread (or asyncio task) logs and prints to `log`."""
    install()
    token = current_log.set(log)
    try:
        yield log
    finally:
        current_log.reset(token)
