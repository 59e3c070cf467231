"""Strict JSON for everything Durable persists.

Values are normalised the way they will be stored (Django's encoder turns datetimes,
Decimals and UUIDs into strings) and rejected, with the offending path named, when they
cannot be stored faithfully: NaN and infinities, NUL characters (PostgreSQL's jsonb
refuses them), sets, bytes, arbitrary objects and non-string object keys (which JSON
would silently turn into strings, so `1` and `"1"` would collide).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

JSON = Any  # a value that survived `normalize`


class NotJSONError(TypeError, ValueError):
    """The value cannot be stored as JSON. `path` names where the problem is."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


_encoder = DjangoJSONEncoder()


def normalize(value: Any, path: str = "value") -> JSON:
    """Return `value` exactly as it will be read back after storage, or raise NotJSONError."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise NotJSONError(path, f"{value!r} is not valid JSON (NaN and infinities are not)")
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise NotJSONError(path, "strings may not contain the NUL character \\u0000")
        return value
    if isinstance(value, dict):
        out: dict[str, JSON] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSONError(
                    path,
                    f"object key {key!r} is a {type(key).__name__}; JSON keys must be strings",
                )
            out[key] = normalize(item, f"{path}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [normalize(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset | bytes | bytearray | memoryview):
        raise NotJSONError(path, f"a {type(value).__name__} is not JSON; use a list or a str")
    try:
        encoded = _encoder.default(value)
    except TypeError:
        raise NotJSONError(path, f"a {type(value).__name__} is not JSON-serialisable") from None
    return normalize(encoded, path)


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
