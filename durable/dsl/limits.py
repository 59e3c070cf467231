"""Flow control declared on a workflow class: concurrency keys, rate limits, debounce.

    class SyncCustomer(Workflow):
        concurrency_key = "customer_id"     # an input key, or a callable input -> str
        concurrency_limit = 1
        rate_limit = "100/m"                # N/s, N/m, N/h (or N/30s, N/5m ...)
        rate_limit_key = "customer_id"      # optional: one budget per key
        debounce = seconds(30)              # or a number of seconds
        debounce_key = "customer_id"

Only data here (no ORM): the store enforces it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

KeySpec: TypeAlias = "str | Callable[[dict[str, Any]], Any]"
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smh])\s*")
# Keys end up in an indexed column together with the workflow name.
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Rate:
    """`count` starts per `period` seconds, spaced evenly: one every `interval` seconds."""

    count: int
    period: float
    text: str

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.period / self.count)


def parse_rate(text: object) -> Rate:
    """ "100/m" -> Rate(100, 60). Raises ValueError with what is accepted."""
    match = RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) < 1 or match[2] == "0":
        raise ValueError(
            f"a rate limit is 'N/s', 'N/m' or 'N/h' with N >= 1 (or 'N/30s' ...), got {text!r}"
        )
    period = int(match[2] or 1) * UNITS[match[3]]
    return Rate(count=int(match[1]), period=period, text=str(text).strip())


@dataclass(frozen=True)
class FlowControl:
    concurrency_key: KeySpec | None = None
    concurrency_limit: int | None = None
    rate: Rate | None = None
    rate_key: KeySpec | None = None
    debounce: float | None = None
    debounce_key: KeySpec | None = None


def key_of(spec: KeySpec | None, input: dict[str, Any], *, workflow: str, option: str) -> str:
    """The key `spec` picks from a start's input ("" when there is no spec: one key for all).

    Raises ValueError naming the workflow and option when the input has no such key or the
    callable returns something that is not a short string or number."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        if spec not in input:
            raise ValueError(f"workflow {workflow!r}: {option} {spec!r} is not in the input")
        value = input[spec]
    else:
        value = spec(input)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(
            f"workflow {workflow!r}: {option} must give a string or an int, got {value!r}"
        )
    key = str(value)
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"workflow {workflow!r}: {option} gave a key longer than {MAX_KEY_LENGTH} characters"
        )
    return key


def compile_flow_control(cls: type[Any]) -> tuple[FlowControl | None, list[str]]:
    """The class's flow-control attributes, validated, and every problem with them."""
    problems: list[str] = []
    names = (
        "concurrency_key",
        "concurrency_limit",
        "rate_limit",
        "rate_limit_key",
        "debounce",
        "debounce_key",
    )
    values = {name: getattr(cls, name, None) for name in names}
    if all(value is None for value in values.values()):
        return None, problems
    for name in ("concurrency_key", "rate_limit_key", "debounce_key"):
        spec = values[name]
        if spec is not None and not (isinstance(spec, str) and spec) and not callable(spec):
            problems.append(
                f"{name} must be an input key (a non-empty string) or a callable input -> "
                f"str, got {spec!r}"
            )
    limit = values["concurrency_limit"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(f"concurrency_limit must be an int >= 1, got {limit!r}")
    if values["concurrency_key"] is not None and limit is None:
        problems.append("concurrency_key is set but concurrency_limit is not")
    rate: Rate | None = None
    if values["rate_limit"] is not None:
        try:
            rate = parse_rate(values["rate_limit"])
        except ValueError as exc:
            problems.append(f"rate_limit: {exc}")
    elif values["rate_limit_key"] is not None:
        problems.append("rate_limit_key is set but rate_limit is not")
    debounce = _seconds(values["debounce"], problems)
    if values["debounce_key"] is not None and values["debounce"] is None:
        problems.append("debounce_key is set but debounce is not")
    if debounce is not None and getattr(cls, "cron", None) is not None:
        problems.append("debounce cannot be combined with cron (every tick would join one run)")
    flow = FlowControl(
        concurrency_key=values["concurrency_key"],
        concurrency_limit=limit,
        rate=rate,
        rate_key=values["rate_limit_key"],
        debounce=debounce,
        debounce_key=values["debounce_key"],
    )
    return flow, problems


def _seconds(value: object, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        problems.append(f"debounce must be a timedelta or a number of seconds, got {value!r}")
        return None
    if not seconds > 0 or math.isinf(seconds):
        problems.append(f"debounce must be positive, got {value!r}")
        return None
    return seconds


def check_keys(workflow: str, flow: FlowControl | None, input: dict[str, Any]) -> None:
    """Raise ValueError when a start's input cannot give every key the workflow needs, before
    anything is written (keys are read again, from the stored input, when limits apply)."""
    if flow is None:
        return
    key_of(flow.concurrency_key, input, workflow=workflow, option="concurrency_key")
    key_of(flow.rate_key, input, workflow=workflow, option="rate_limit_key")
    key_of(flow.debounce_key, input, workflow=workflow, option="debounce_key")
