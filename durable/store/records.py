"""Plain records passed between the store and the engine."""

from __future__ import annotations

import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable.flow.token import Token
from durable.flow.waits import WaitSpec
from durable.serialization import safe_repr


@dataclass
class ClaimedTask:
    """One task claimed by one worker, with what the step needs to run."""

    task_id: int
    lease_token: uuid.UUID
    execution_pk: int
    workflow_id: str
    workflow_name: str
    kind: str  # step | compensate
    step: str
    token: Token
    attempt: int
    queue: str
    input: Any
    context: dict[str, Any]  # the view the step sees (root context or its branch's view)
    deadline_at: datetime | None
    claimed_at: datetime
    # Values of the waits this run of the step already passed, and the wait it is parked on.
    expiries: int = 0  # how often a lease on this task expired before
    lost_by: list[str] = field(default_factory=list)  # the workers that held those leases
    recorded_waits: list[Any] = field(default_factory=list)
    pending_wait: WaitSpec | None = None
    # The structure the execution started with (durable.dsl.fingerprint); "" for old rows.
    fingerprint: str = ""
    # Whether the execution had unconsumed events or child workflows when claimed (False
    # when the claim did not look: a step its checkpoint chained). See StepWaits.
    open_events: bool = False
    has_children: bool = False
    # The execution's parent (a child workflow), if any.
    parent_pk: int | None = None
    # The answers of `ctx.patched` the run recorded so far.
    patches: dict[str, bool] = field(default_factory=dict)
    # The W3C trace context recorded when the execution was started, if any.
    trace_context: dict[str, Any] | None = None


@dataclass
class WaitEffects:
    """What a step's waits did during one run, applied in the run's checkpoint."""

    recorded: list[Any] = field(default_factory=list)  # values of every wait passed, in order
    consumed_events: list[int] = field(default_factory=list)
    seen_event_id: int = 0  # the newest event the waits looked at
    timed_out_inputs: list[tuple[str, int]] = field(default_factory=list)  # (name, index)
    children: list[ChildStart] = field(default_factory=list)
    patches: dict[str, bool] = field(default_factory=dict)  # `ctx.patched` answers given


def error_record(exc: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """A JSON description of an exception that never fails, whatever the exception holds."""
    cls = type(exc)
    try:
        message = str(exc)
    except BaseException:
        message = safe_repr(exc)
    record: dict[str, Any] = {
        "type": f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ != "builtins"
        else cls.__qualname__,
        "message": storable_text(message)[:10_000],
    }
    if with_traceback:
        try:
            text = "".join(traceback.format_exception(exc))
        except BaseException:
            text = "(traceback unavailable)"
        record["traceback"] = storable_text(text)[-20_000:]
    return record


def storable_text(text: str) -> str:
    """`text` with what PostgreSQL cannot store (NUL, lone UTF-16 surrogates) escaped."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class ChildStart:
    """A child workflow a step run started (`ctx.start_child`), created at its checkpoint."""

    workflow_id: str
    workflow_name: str
    input: dict[str, Any]
    queue: str | None
    priority: int | None
