"""Checks of the public API's arguments, made before anything is read or written.

The database would refuse some values with its own error (`DataError` for a NUL or an
integer out of range, `UnicodeEncodeError` for a lone surrogate), after part of the work;
each check here names the argument instead, and raises what the API documents: `TypeError`
for a wrong type, `ValueError` for a bad value, `ExecutionNotFound` for a workflow id that
no execution can have. Values stored as JSON (inputs, payloads, responses) are checked by
`durable.serialization.normalize`, which bounds their nesting and integers too.
"""

from __future__ import annotations

import uuid
from typing import Any

from durable.exceptions import ExecutionNotFound
from durable.flow.waits import MAX_NAME_LENGTH
from durable.serialization import string_problem

# The columns these values are stored in (WorkflowExecution.workflow_id, the integer
# priority columns of executions and tasks).
MAX_WORKFLOW_ID_LENGTH = 64
MIN_PRIORITY, MAX_PRIORITY = -(2**31), 2**31 - 1
MAX_REASON_LENGTH = 2000
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Row counts and offsets (LIMIT and OFFSET take a signed 64-bit integer).
MAX_ROWS = 2**63 - 1


def text_problem(value: str) -> str | None:
    """What a database text column cannot store in `value`, as the end of a sentence."""
    problem = string_problem(value)
    return None if problem is None else f"must not contain {problem}"


def short(value: str, limit: int = 60) -> str:
    """`value` for an error message: its repr, cut at `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(value)} characters)"


def _number(value: int) -> str:
    # str() of a huge int is slow, and refused past 4,300 digits.
    return str(value) if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"


def text(value: Any, name: str, *, max_length: int, strip: bool = True) -> str:
    """Required text: a str that is not blank, at most `max_length` characters, storable;
    returned stripped, unless `strip=False` (names must match exactly what waits for them)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    stripped = value.strip() if strip else value
    if not stripped.strip() or len(stripped) > max_length:
        raise ValueError(
            f"{name} must be a string of 1 to {max_length} characters, got {short(value)}"
        )
    problem = text_problem(stripped)
    if problem:
        raise ValueError(f"{name} {problem}")
    return stripped


def workflow_id(value: Any, name: str = "workflow_id") -> str:
    """A workflow id as stored: a str (or a UUID). One that no execution can have (empty,
    too long, with a NUL) is not found, like any other unknown id."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    problem = text_problem(value)
    if problem is None and not 0 < len(value) <= MAX_WORKFLOW_ID_LENGTH:
        problem = f"must be 1 to {MAX_WORKFLOW_ID_LENGTH} characters long"
    if problem:
        raise ExecutionNotFound(f"no execution with id {short(value)}: {name} {problem}")
    return str(value)


def event_name(value: Any) -> str:
    return _name("event", value)


def input_name(value: Any) -> str:
    return _name("input", value)


def _name(kind: str, value: Any) -> str:
    # One message for a wrong type and a wrong length, as before these checks.
    if not isinstance(value, str) or not 0 < len(value.strip()) <= MAX_NAME_LENGTH:
        raise ValueError(
            f"{kind} name must be a string of 1 to {MAX_NAME_LENGTH} characters, "
            f"got {short(value) if isinstance(value, str) else repr(value)[:60]}"
        )
    return text(value, f"{kind} name", max_length=MAX_NAME_LENGTH, strip=False)


def reason(value: Any) -> str:
    return text(value, "reason", max_length=MAX_REASON_LENGTH)


def priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, got {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(
            f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {_number(value)}"
        )
    return value


def idempotency_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(
            f"idempotency_key must be a string of 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
            f"characters, got {short(value) if isinstance(value, str) else repr(value)[:60]}"
        )
    problem = text_problem(value)
    if problem:
        raise ValueError(f"idempotency_key {problem}")
    return value


def optional_text(value: Any, name: str, *, max_length: int) -> str | None:
    """None, or text as `text()` checks it."""
    return None if value is None else text(value, name, max_length=max_length)


def row_count(value: Any, name: str) -> int:
    """A limit or an offset: a non-negative int the database takes."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value <= MAX_ROWS:
        raise ValueError(f"{name} must be between 0 and {MAX_ROWS}, got {_number(value)}")
    return value
