"""Strict JSON for everything Durable persists.

Values are normalised the way they will be stored and rejected, with the offending path
named, when they would not come back as they went in: datetimes, dates, Decimals, UUIDs
and durations (JSON would hand back strings), NaN and infinities, NUL characters and
unpaired surrogates (PostgreSQL's jsonb refuses them), sets, bytes, arbitrary objects,
circular references, nesting deeper than MAX_DEPTH, integers longer than MAX_INT_DIGITS
and non-string object keys (which JSON would silently turn into strings, so `1` and `"1"`
would collide).

Dataclass instances are stored as objects of their fields, pydantic models as their JSON
mode dump (pydantic parses its datetimes and Decimals back); a workflow's `input_type`
turns them into instances again (durable.dsl.payloads).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import math
import uuid
from typing import Any

from django.utils.functional import Promise

JSON = Any  # a value that survived `normalize`


class NotJSONError(TypeError, ValueError):
    """The value cannot be stored as JSON. `path` names where the problem is."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[type[NotJSONError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))


# What JSON would hand back as a string: refused rather than silently changed.
_STRINGIFIED = (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID)

# Lists and objects nest at most this deep: deeper values would exhaust Python's recursion
# limit here, in the JSON encoder or in the database's decoder.
MAX_DEPTH = 100
# Integers have at most this many digits: Python refuses to turn longer ones into text
# (sys.get_int_max_str_digits), so they could not be encoded.
MAX_INT_DIGITS = 4300
_TOO_LARGE = 10**MAX_INT_DIGITS


def normalize(value: Any, path: str = "value") -> JSON:
    """Return `value` exactly as it will be read back after storage, or raise NotJSONError."""
    return _normalize(value, path, set())


def _normalize(value: Any, path: str, parents: set[int]) -> JSON:
    # Subclasses of str/int/float (StrEnum, IntEnum, numpy floats) come back as the plain
    # type, so a value compares the same before and after a round trip through storage.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_TOO_LARGE < value < _TOO_LARGE:
            raise NotJSONError(path, f"integers may have at most {MAX_INT_DIGITS} digits")
        return int.__int__(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise NotJSONError(path, f"{value!r} is not valid JSON (NaN and infinities are not)")
        return float.__float__(value)
    if isinstance(value, str):
        problem = string_problem(value)
        if problem:
            raise NotJSONError(path, f"strings may not contain {problem}")
        return str.__str__(value)
    if isinstance(value, dict | list | tuple):
        if id(value) in parents:
            raise NotJSONError(path, "the value contains itself (a circular reference)")
        if len(parents) >= MAX_DEPTH:
            raise NotJSONError(path, f"lists and objects may nest at most {MAX_DEPTH} deep")
        parents.add(id(value))
        try:
            if isinstance(value, dict):
                return _normalize_dict(value, path, parents)
            return [_normalize(item, f"{path}[{i}]", parents) for i, item in enumerate(value)]
        finally:
            parents.discard(id(value))
    if isinstance(value, set | frozenset | bytes | bytearray | memoryview):
        raise NotJSONError(path, f"a {type(value).__name__} is not JSON; use a list or a str")
    if isinstance(value, _STRINGIFIED):
        raise NotJSONError(
            path,
            f"a {type(value).__name__} would come back from JSON as a str, not as itself; "
            "store str(value) or value.isoformat() and parse it back, or use a pydantic "
            "model (as the workflow's input_type) that does",
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _normalize_dict(fields, path, parents)
    if _is_pydantic(value):
        try:
            dumped = value.model_dump(mode="json")
        except ValueError as exc:  # pydantic's serialisation errors
            raise NotJSONError(path, f"{type(value).__name__} could not be dumped: {exc}") from None
        return _normalize(dumped, path, parents)
    if isinstance(value, Promise):
        return _normalize(str(value), path, parents)  # a lazy translation: its text
    raise NotJSONError(path, f"a {type(value).__name__} is not JSON-serialisable")


def _is_pydantic(value: Any) -> bool:
    # Duck-typed: pydantic stays optional.
    cls = type(value)
    return callable(getattr(cls, "model_dump", None)) and hasattr(cls, "model_fields")


def _normalize_dict(value: dict[Any, Any], path: str, parents: set[int]) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise NotJSONError(
                path, f"object key {key!r} is a {type(key).__name__}; JSON keys must be strings"
            )
        problem = string_problem(key)
        if problem:
            raise NotJSONError(path, f"object key {key!r} contains {problem}")
        out[str.__str__(key)] = _normalize(item, f"{path}[{key!r}]", parents)
    return out


def string_problem(text: str) -> str | None:
    """What PostgreSQL's jsonb (and UTF-8) cannot store in `text`, if anything."""
    if "\x00" in text:
        return "the NUL character \\u0000"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"an unpaired surrogate {text[exc.start]!r} (not valid Unicode)"
    return None


def dumps(value: JSON) -> str:
    """Serialise an already normalised value."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def safe_repr(value: object, limit: int = 2000) -> str:
    """A printable description of anything, even objects whose __repr__ raises."""
    try:
        text = repr(value)
    except BaseException:
        text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"
