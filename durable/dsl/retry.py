"""Retry policies: how many attempts a step gets and how long to wait between them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from durable.time import as_seconds

Backoff = Literal["exponential", "linear", "constant"]
BACKOFFS: tuple[Backoff, ...] = ("exponential", "linear", "constant")


@dataclass(frozen=True)
class Retry:
    """`max_attempts` counts the first attempt: `Retry(max_attempts=1)` never retries.

    The delay before attempt n+1 (n = 1, 2, ...) is `base**n` seconds for exponential,
    `n*base` for linear and `base` for constant backoff, capped at `max_backoff`.
    """

    max_attempts: int = 3
    backoff: Backoff = "exponential"
    base: float = 2
    max_backoff: float | timedelta = 3600

    def problems(self) -> list[str]:
        found = []
        if not _is_int(self.max_attempts) or self.max_attempts < 1:
            found.append(f"max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if self.backoff not in BACKOFFS:
            found.append(f"backoff must be one of {', '.join(BACKOFFS)}, got {self.backoff!r}")
        if not _is_number(self.base) or not math.isfinite(self.base) or self.base < 0:
            found.append(f"base must be a finite number >= 0, got {self.base!r}")
        if isinstance(self.max_backoff, timedelta):
            cap: float = self.max_backoff.total_seconds()
        elif _is_number(self.max_backoff):
            cap = float(self.max_backoff)
        else:
            cap = math.nan
        if math.isnan(cap) or cap < 0:
            found.append(f"max_backoff must be >= 0 seconds, got {self.max_backoff!r}")
        return found

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` before the next one."""
        if self.backoff == "exponential":
            try:
                delay = float(self.base**attempt)
            except OverflowError:
                delay = float("inf")
        elif self.backoff == "linear":
            delay = attempt * float(self.base)
        else:
            delay = float(self.base)
        return min(delay, as_seconds(self.max_backoff) or 0.0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
