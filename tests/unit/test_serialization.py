from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid

import pytest

from durable.serialization import NotJSONError, dumps, normalize, safe_repr
from durable.time import as_seconds, days, hours, minutes, seconds


class Tier(enum.StrEnum):
    HIGH = "high"


class Level(enum.IntEnum):
    TWO = 2


def test_plain_json_round_trips_unchanged() -> None:
    value = {"a": [1, 2.5, "x", None, True, False], "b": {"c": {}}, "d": []}
    assert normalize(value) == value


def test_non_ascii_text_is_accepted() -> None:
    value = {"café": "naïve 😀 \u2028 日本"}
    assert normalize(value) == value


def test_tuples_become_lists() -> None:
    assert normalize({"t": (1, (2, 3))}) == {"t": [1, [2, 3]]}


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        datetime.date(2026, 1, 2),
        datetime.time(9, 30),
        decimal.Decimal("10.50"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        datetime.timedelta(minutes=1),
    ],
)
def test_values_json_would_turn_into_strings_are_refused_with_their_path(value: object) -> None:
    with pytest.raises(NotJSONError) as info:
        normalize({"order": {"at": [value]}}, "input")

    assert info.value.path == "input['order']['at'][0]"
    assert f"a {type(value).__name__} would come back from JSON as a str" in str(info.value)


def test_scalar_subclasses_come_back_as_plain_types() -> None:
    value = normalize({"tier": Tier.HIGH, "level": Level.TWO})
    assert type(value["tier"]) is str
    assert type(value["level"]) is int
    assert value == {"tier": "high", "level": 2}
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        (float("nan"), "value", "nan"),
        (float("inf"), "value", "inf"),
        ({"a": [1, float("-inf")]}, "value['a'][1]", "-inf"),
        ("a\x00b", "value", "NUL"),
        ({"a\x00": 1}, "value", "NUL"),
        ("bad \ud800 text", "value", "unpaired surrogate"),
        ({"k\udc00": 1}, "value", "unpaired surrogate"),
        (["ok", {"deep": "\udfff"}], "value[1]['deep']", "unpaired surrogate"),
        ({1, 2}, "value", "set"),
        (frozenset(), "value", "frozenset"),
        (b"raw", "value", "bytes"),
        (bytearray(b"raw"), "value", "bytearray"),
        ({1: "a"}, "value", "key 1 is a int"),
        ({"ok": {(1, 2): "x"}}, "value['ok']", "key (1, 2)"),
        (object(), "value", "object is not JSON-serialisable"),
        ([1, {"deep": {"x": {3}}}], "value[1]['deep']['x']", "set"),
    ],
)
def test_values_json_cannot_store_are_rejected_with_their_path(
    value: object, path: str, fragment: str
) -> None:
    with pytest.raises(NotJSONError) as info:
        normalize(value)
    assert info.value.path == path
    assert fragment in str(info.value)


def test_colliding_int_and_str_keys_are_rejected() -> None:
    with pytest.raises(NotJSONError, match="key 1 is a int"):
        normalize({1: "a", "1": "b"})


def test_circular_reference_is_rejected_not_a_recursion_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(NotJSONError, match="circular"):
        normalize({"loop": loop})


def test_the_same_list_twice_is_not_a_circular_reference() -> None:
    shared = [1]
    assert normalize({"a": shared, "b": shared}) == {"a": [1], "b": [1]}


def test_normalize_returns_a_copy() -> None:
    original = {"a": [1]}
    result = normalize(original)
    result["a"].append(2)
    assert original == {"a": [1]}


def test_not_json_error_is_both_type_and_value_error() -> None:
    with pytest.raises(TypeError):
        normalize({1})
    with pytest.raises(ValueError, match="NaN"):
        normalize(float("nan"))


def test_dumps_is_compact_and_refuses_nan() -> None:
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(float("nan"))


def test_safe_repr_survives_a_broken_repr_and_truncates() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert safe_repr(Broken()) == "<unprintable Broken>"
    assert safe_repr("x" * 10, limit=5) == "'xxxx…"


def test_duration_helpers_are_timedeltas() -> None:
    assert seconds(30) == datetime.timedelta(seconds=30)
    assert minutes(2) == datetime.timedelta(seconds=120)
    assert hours(1.5) == datetime.timedelta(minutes=90)
    assert days(2) == datetime.timedelta(hours=48)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (minutes(2), 120.0), (5, 5.0), (2.5, 2.5)],
)
def test_as_seconds_accepts_timedeltas_and_numbers(value: object, expected: float | None) -> None:
    assert as_seconds(value) == expected  # type: ignore[arg-type]
