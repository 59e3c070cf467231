"""A task's arguments and return value, held to Django's rule: what is stored is what comes
back. Django's `normalize_json` decides what is accepted (and raises its `TypeError` or
`ValueError` for the rest: a datetime, a set, undecodable bytes); what it returns must then
survive a JSON round trip unchanged, or a task would see other values than it was given."""

from __future__ import annotations

import math
from typing import Any

from durable.tasks.framework import normalize_json


def exact_json(value: Any, what: str) -> Any:
    """`value` as Django normalizes it; TypeError when a JSON round trip would change it."""
    normalized = normalize_json(value)
    problem = _round_trip_problem(normalized, "")
    if problem is not None:
        raise TypeError(f"Unsupported value in {what}: {problem}; it would not survive JSON.")
    return normalized


def _round_trip_problem(value: Any, path: str) -> str | None:
    """Where a JSON round trip of `value` (already normalized) would change it, if anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} at {path or 'the top'} (JSON has no NaN or infinity)"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"the key {key!r} at {path or 'the top'} (JSON keys are strings)"
            problem = _round_trip_problem(item, f"{path}[{key!r}]")
            if problem is not None:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _round_trip_problem(item, f"{path}[{index}]")
            if problem is not None:
                return problem
    return None
