"""Cooperative cancellation: whether a running step attempt has been asked to stop.

Python cannot stop a thread from outside, so a sync step that runs past its `timeout=`
(or whose execution was cancelled, or whose worker is shutting down) goes on until it
returns. A step that checks `ctx.cancelled` (or calls `ctx.raise_if_cancelled()`) between
units of work stops soon after instead. The deadline is read from the clock when asked,
so a step sees its timeout at once, however busy its worker is.
"""

from __future__ import annotations

import threading
import time

from durable.exceptions import StepCancelled

TIMEOUT = "timeout"


class Cancellation:
    """One attempt's stop request: set by its worker, or by its own deadline passing."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._deadline: float | None = None  # time.monotonic()
        self.reason = ""

    def start(self, timeout: float | None) -> None:
        """The attempt's body starts now; with a timeout, it is asked to stop after it."""
        self._deadline = time.monotonic() + timeout if timeout is not None else None

    def cancel(self, reason: str) -> None:
        """Ask the attempt to stop, saying why (the first reason given stays)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        if self._event.is_set():
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.cancel(TIMEOUT)
            return True
        return False

    @property
    def timed_out(self) -> bool:
        return self.requested and self.reason == TIMEOUT

    def raise_if_requested(self, step: str | None) -> None:
        if self.requested:
            raise StepCancelled(f"step {step!r} was asked to stop: {self.reason}")
