"""Duration helpers for the DSL: `timeout=minutes(2)`. Durations are `timedelta`s."""

from __future__ import annotations

from datetime import timedelta


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def as_seconds(value: timedelta | float | int | None) -> float | None:
    """Normalise a duration given as a timedelta or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)
