"""Durable waits inside a step: sleeps, events and human input.

A wait that is not satisfied raises `Suspend`; the engine parks the step (no worker, no
thread, no connection held) and runs it again from its start when the wait is satisfied
or times out. Waits already satisfied in that step return their recorded values at once,
in order, so only the first unsatisfied wait suspends again.

The engine provides a `WaitRuntime` that knows what was recorded and can look up events
and input responses; this module holds the rules, with no database access.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

WaitKind = Literal["sleep", "event", "input", "child"]

NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "NO_VALUE"})()

# Event and input names are stored in columns of this size (WorkflowEvent.name,
# PendingInput.input_name).
MAX_NAME_LENGTH = 200


@dataclass
class WaitSpec:
    """One wait a step is parked on, as stored with its task."""

    kind: WaitKind
    index: int
    name: str = ""
    deadline: datetime | None = None  # wake-up time of a sleep, timeout of an event/input
    input_schema: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "index": self.index,
            "name": self.name,
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }
        if self.input_schema:
            data["input_schema"] = self.input_schema
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WaitSpec:
        deadline = data.get("deadline")
        return cls(
            kind=data["kind"],
            index=int(data["index"]),
            name=data.get("name", ""),
            deadline=datetime.fromisoformat(deadline) if deadline else None,
            input_schema=dict(data.get("input_schema") or {}),
        )

    def same_wait(self, kind: WaitKind, name: str, index: int) -> bool:
        return (self.kind, self.name, self.index) == (kind, name, index)


# A wait that timed out with no `timeout_value` is recorded as this marker, so that a re-run
# of the step in the same attempt (the step caught WaitTimeout and then parked on a later
# wait) meets the timeout again instead of waiting anew. A retry waits afresh.
_TIMED_OUT = "__durable_wait_timed_out__"


def timed_out_marker(attempt: int, message: str) -> dict[str, Any]:
    return {_TIMED_OUT: {"attempt": attempt, "message": message}}


def read_timed_out_marker(value: Any) -> tuple[int, str] | None:
    """(attempt, message) when `value` is a recorded timeout, else None."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_TIMED_OUT), dict):
        marker = value[_TIMED_OUT]
        return int(marker.get("attempt", 0)), str(marker.get("message", "wait timed out"))
    return None


class Suspend(BaseException):
    """Unwinds a step to park it on `wait`. A BaseException, so `except Exception` in step
    code does not swallow it."""

    def __init__(self, wait: WaitSpec) -> None:
        self.wait = wait
        if wait.kind == "sleep" and wait.deadline is not None:
            super().__init__(f"sleeping until {wait.deadline.isoformat()}")
        else:
            super().__init__(f"waiting for {wait.kind} {wait.name!r}")


class WaitRuntime(Protocol):
    """What the engine offers a step's waits."""

    def now(self) -> datetime: ...

    def recorded(self) -> list[Any]:
        """Values of the waits already satisfied in this run of the step, in order."""
        ...

    def pending(self) -> WaitSpec | None:
        """The wait this run of the step was parked on, if any."""
        ...

    def record(self, value: Any) -> None:
        """Remember that the next wait (by index) was satisfied with `value`."""
        ...

    def forget(self, index: int) -> None:
        """Drop the recorded values from `index` on: the step waits afresh from there."""
        ...

    def take_event(self, name: str, filter: Callable[[Any], bool] | None) -> tuple[bool, Any]:
        """Consume the oldest matching event not consumed yet: (found, payload)."""
        ...

    def input_response(self, name: str) -> tuple[bool, Any]:
        """(responded, response) for the input `name` of this step."""
        ...

    def input_timed_out(self, name: str) -> None:
        """Mark the pending input `name` as timed out."""
        ...

    def patched(self, patch_id: str, *, replaying: bool) -> bool:
        """The run's answer for `patch_id`, recorded now if it has none: False when the
        step re-runs code that an earlier run of it passed without the patch."""
        ...

    def start_child(
        self, workflow: Any, input: Any, queue: str | None, priority: int | None
    ) -> str:
        """Validate and note a child workflow to create at the step's checkpoint; its id."""
        ...

    def child_outcome(self, workflow_id: str) -> ChildOutcome | None:
        """How the child `workflow_id` ended, or None while it runs. Raises ValueError
        when it is not a child of this execution."""
        ...


@dataclass(frozen=True)
class ChildOutcome:
    status: str  # a finished status: completed, failed, cancelled, compensated, ...
    result: Any
    error: dict[str, Any] | None


def duration(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
) -> timedelta:
    for label, value in (
        ("seconds", seconds),
        ("minutes", minutes),
        ("hours", hours),
        ("days", days),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"{label}= must be a number >= 0, got {value!r}")
    return timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
