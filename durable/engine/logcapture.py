"""Per-step capture of logging records and of what steps print.

A context variable names the step attempt the current code runs for. A wrapper around
`Logger.callHandlers` and proxies over `sys.stdout`/`sys.stderr` route each record or line to that
attempt's `StepLog`; code running for no step (the worker itself) is untouched. Threads
each have their own context and every asyncio task gets a copy, so steps running at once
in one worker never see each other's lines. Printed text still reaches the console.

What is captured follows DURABLE["CAPTURE_LOGS"], ["CAPTURE_STDOUT"] (off: nothing of that
kind is stored, and the streams are never swapped) and ["CAPTURE_LEVEL"] (None: the records
the loggers' levels let through; a level: the records at or above it, even from loggers
whose level would drop them, which are then stored without reaching any handler). Records
keep their `extra` fields, and carry the run's ids wherever they go (durable.telemetry.logs).

The wrapper wraps whatever `Logger.callHandlers` is when capture is first installed, so
another wrapper installed before (sentry-sdk's logging integration) or after keeps working.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from durable.conf import durable_settings
from durable.serialization import NotJSONError, normalize, safe_repr
from durable.store.records import ClaimedTask, storable_text
from durable.telemetry import logs
from durable.telemetry.logs import StepIds

TRUNCATED_STREAM = "durable"


def capture_level(value: object) -> int | None:
    """DURABLE["CAPTURE_LEVEL"] as a number: None, a level name ("DEBUG") or a number;
    ValueError for anything else (checks.py reports it)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a logging level")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        level = logging.getLevelNamesMapping().get(value.upper())
        if level is not None:
            return level
    raise ValueError(f"{value!r} is not a logging level (e.g. 'DEBUG', 'INFO' or 10)")


class StepLog:
    """The captured lines of one step attempt, capped at `max_bytes` of message text."""

    def __init__(
        self,
        max_bytes: int,
        *,
        ids: StepIds | None = None,
        capture_logs: bool = True,
        capture_stdout: bool = True,
        level: int | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.ids = ids
        self.capture_logs = capture_logs
        self.capture_stdout = capture_stdout
        self.level = level
        self.entries: list[dict[str, Any]] = []
        self._size = 0
        self._dropped_lines = 0
        self._dropped_bytes = 0
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()
        # How many leading entries a live flush already appended to the attempt's row
        # (a run resumed after a wait appends to it): `finish` leaves them out.
        self.stored = 0

    @classmethod
    def for_claim(cls, claim: ClaimedTask) -> StepLog:
        """The log of an attempt of `claim`, capturing as the settings say."""
        try:
            level = capture_level(durable_settings.CAPTURE_LEVEL)
        except ValueError:
            level = None  # reported by `manage.py check` (durable.E051)
        return cls(
            int(durable_settings.STEP_LOG_MAX_BYTES),
            ids=StepIds(claim.workflow_id, claim.step, claim.attempt),
            capture_logs=bool(durable_settings.CAPTURE_LOGS),
            capture_stdout=bool(durable_settings.CAPTURE_STDOUT),
            level=level,
        )

    def snapshot(self) -> list[dict[str, Any]]:
        """The whole lines captured so far (a copy, safe to read from another thread)."""
        with self._lock:
            return list(self.entries)

    def add(
        self,
        *,
        level: str,
        message: str,
        logger: str,
        stream: str,
        keep: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Add one entry; `keep` adds it even over the cap (a failure's traceback)."""
        message = storable_text(message)
        size = len(message.encode("utf-8"))
        if extra:
            size += len(json.dumps(extra).encode("utf-8"))
        with self._lock:
            if not keep and self._size + size > self.max_bytes:
                self._dropped_lines += 1
                self._dropped_bytes += size
                return
            self._size += size
            entry: dict[str, Any] = {
                "timestamp": datetime.now(UTC).isoformat(),
                "level": level,
                "message": message,
                "logger": logger,
                "stream": stream,
            }
            if extra:
                entry["extra"] = extra
            self.entries.append(entry)

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
# What `Logger.callHandlers` and `Logger.isEnabledFor` were when capture was installed.
_call_handlers: Callable[[logging.Logger, logging.LogRecord], None] = logging.Logger.callHandlers
_is_enabled_for: Callable[[logging.Logger, int], bool] = logging.Logger.isEnabledFor


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
    level = log.level
    if log.capture_logs and (level is None or record.levelno >= level):
        log.add(
            level=record.levelname,
            message=_message(record),
            logger=record.name,
            stream="logging",
            extra=_extra(record),
        )
    if level is not None and not _is_enabled_for(logger, record.levelno):
        return  # made only for the capture level: the logger's own level drops it
    token = _handling.set(True)
    try:
        _call_handlers(logger, record)
    finally:
        _handling.reset(token)


def _enabled_for_step(logger: logging.Logger, level: int) -> bool:
    """`Logger.isEnabledFor`, also true in a step for levels its capture level takes."""
    if _is_enabled_for(logger, level):
        return True
    log = current_log.get()
    return (
        log is not None
        and log.level is not None
        and log.capture_logs
        and level >= log.level
        and not logger.disabled
        and logger.manager.disable < level
    )


# The attributes every LogRecord has: the others came in `extra` (or from a filter).
_STANDARD = {
    *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
    "message",
    "asctime",
    "taskName",
    *logs.ATTRIBUTES,
}


def _extra(record: logging.LogRecord) -> dict[str, Any] | None:
    extra = {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }
    if not extra:
        return None
    return {key: _storable(value) for key, value in extra.items()}


def _storable(value: Any) -> Any:
    try:
        return normalize(value)
    except NotJSONError:
        return safe_repr(value)


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
        if log is not None and log.capture_stdout and not _handling.get():
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
_level_installed = False
_install_lock = threading.Lock()


def install(log: StepLog) -> None:
    """Route logging (and, if `log` captures them, sys.stdout/sys.stderr) through the
    capture; each patch is made once per process, the first time a step needs it."""
    global _installed, _level_installed, _call_handlers, _is_enabled_for
    with _install_lock:
        if log.capture_logs and not _installed:
            _call_handlers = logging.Logger.callHandlers
            logging.Logger.callHandlers = _capture_and_call_handlers  # type: ignore[method-assign,assignment]
            _installed = True
        if log.capture_logs and log.level is not None and not _level_installed:
            _is_enabled_for = logging.Logger.isEnabledFor
            logging.Logger.isEnabledFor = _enabled_for_step  # type: ignore[method-assign,assignment]
            _level_installed = True
        if log.capture_stdout:
            # Checked every time: a test runner may have swapped the streams since.
            if not isinstance(sys.stdout, _StreamProxy):
                sys.stdout = _StreamProxy(sys.stdout, "stdout")
            if not isinstance(sys.stderr, _StreamProxy):
                sys.stderr = _StreamProxy(sys.stderr, "stderr")


@contextmanager
def capturing(log: StepLog) -> Iterator[StepLog]:
    """Send what this thread (or asyncio task) logs and prints to `log`; records made
    meanwhile carry the attempt's ids."""
    install(log)
    token = current_log.set(log)
    try:
        if log.ids is None:
            yield log
        else:
            with logs.step_ids(log.ids):
                yield log
    finally:
        current_log.reset(token)
