from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest

from durable.flow.context import Context, ReadOnlyContextError
from durable.flow.ops import ContextConflict, apply_ops
from durable.serialization import NotJSONError


def make(data: dict[str, Any] | None = None, **facts: Any) -> Context:
    return Context({} if data is None else data, **facts)


def test_reads_by_item_get_contains_and_data() -> None:
    ctx = make({"a": 1, "none": None})
    assert ctx["a"] == 1
    assert ctx.get("a") == 1
    assert ctx.get("missing") is None
    assert ctx.get("missing", "fallback") == "fallback"
    assert ctx.get("none", "fallback") is None  # a stored None is a value, not "missing"
    assert "a" in ctx
    assert "missing" not in ctx
    assert ctx.data == {"a": 1, "none": None}
    with pytest.raises(KeyError):
        ctx["missing"]


def test_read_values_are_copies() -> None:
    ctx = make({"items": [1, 2], "nested": {"k": [1]}})
    ctx["items"].append(3)
    ctx.get("items").append(4)
    ctx.get("nested")["k"].append(2)
    ctx.data["items"].append(5)
    ctx.data["new"] = 1
    assert ctx.data == {"items": [1, 2], "nested": {"k": [1]}}
    assert ctx.ops == []


def test_a_stored_value_cannot_be_changed_through_the_object_that_was_put() -> None:
    ctx = make()
    value = {"list": [1]}
    ctx.put("k", value)
    value["list"].append(2)
    assert ctx["k"] == {"list": [1]}


def test_put_key_value_records_a_put_op() -> None:
    ctx = make()
    ctx.put("a", 1)
    assert ctx["a"] == 1
    assert ctx.ops == [["put", "a", 1]]


def test_put_dict_writes_every_key() -> None:
    ctx = make({"keep": 0})
    ctx.put({"a": 1, "b": [2]})
    assert ctx.data == {"keep": 0, "a": 1, "b": [2]}
    assert ctx.ops == [["put", "a", 1], ["put", "b", [2]]]


def test_setitem_is_put() -> None:
    ctx = make()
    ctx["a"] = {"x": 1}
    assert ctx.data == {"a": {"x": 1}}
    assert ctx.ops == [["put", "a", {"x": 1}]]


def test_update_replaces_with_fn_of_current_value() -> None:
    ctx = make({"n": 2})
    ctx.update("n", lambda n: n * 10)
    ctx.update("absent", lambda current: [current])
    assert ctx.data == {"n": 20, "absent": [None]}
    assert ctx.ops == [["put", "n", 20], ["put", "absent", [None]]]


def test_update_fn_gets_a_copy_it_may_mutate() -> None:
    ctx = make({"items": [1]})

    def add(items: list[int]) -> list[int]:
        items.append(2)
        return items

    ctx.update("items", add)
    assert ctx["items"] == [1, 2]
    assert ctx.ops == [["put", "items", [1, 2]]]


def test_merge_writes_every_key() -> None:
    ctx = make({"a": 1, "b": 1})
    ctx.merge({"b": 2, "c": 3})
    assert ctx.data == {"a": 1, "b": 2, "c": 3}


def test_delete_removes_the_key_and_tolerates_absent_keys() -> None:
    ctx = make({"a": 1})
    ctx.delete("a")
    ctx.delete("never")
    assert ctx.data == {}
    assert ctx.ops == [["delete", "a"], ["delete", "never"]]


def test_init_accumulator_sets_only_if_absent() -> None:
    ctx = make({"existing": [1]})
    ctx.init_accumulator("existing", [])
    ctx.init_accumulator("fresh", [])
    ctx.init_accumulator("default")
    ctx.init_accumulator("counter", 0)
    assert ctx.data == {"existing": [1], "fresh": [], "default": [], "counter": 0}


def test_append_creates_the_list_and_appends() -> None:
    ctx = make()
    ctx.append("log", "a")
    ctx.append("log", {"b": 1})
    assert ctx["log"] == ["a", {"b": 1}]
    assert ctx.ops == [["append", "log", "a"], ["append", "log", {"b": 1}]]


def test_increment_starts_from_zero_and_adds() -> None:
    ctx = make({"total": 1.5})
    ctx.increment("count")
    ctx.increment("count", 4)
    ctx.increment("total", -0.5)
    assert ctx.data == {"total": 1.0, "count": 5}


def test_append_to_a_non_list_fails_and_records_nothing() -> None:
    ctx = make({"name": "x"})
    with pytest.raises(ContextConflict, match="cannot append to context key 'name'"):
        ctx.append("name", 1)
    assert ctx.ops == []
    assert ctx["name"] == "x"


def test_increment_of_a_non_number_fails_and_records_nothing() -> None:
    ctx = make({"flag": True, "items": []})
    with pytest.raises(TypeError, match="'flag'"):
        ctx.increment("flag")
    with pytest.raises(TypeError, match="'items'"):
        ctx.increment("items")
    assert ctx.ops == []


@pytest.mark.parametrize("amount", ["1", None, True])
def test_increment_amount_must_be_a_number(amount: Any) -> None:
    with pytest.raises(TypeError, match="increment amount"):
        make().increment("n", amount)


def test_facts_are_exposed() -> None:
    ctx = make(input={"order_id": 7}, workflow_id="wf-1", current_step="charge", attempt=3)
    assert ctx.input == {"order_id": 7}
    assert ctx.workflow_id == "wf-1"
    assert ctx.current_step == "charge"
    assert ctx.attempt == 3


def test_progress_reaches_its_hook_and_is_a_no_op_without_one() -> None:
    seen: list[tuple[float, float | None]] = []
    Context({}, progress_hook=lambda done, total: seen.append((done, total))).progress(3, 10)
    make().progress(1)
    assert seen == [(3, 10)]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "inf"),
        ("bad\x00", "NUL"),
        ("half \ud83d of an emoji", "unpaired surrogate"),
        ({1, 2}, "set"),
        (b"bytes", "bytes"),
        ({1: "a", "1": "b"}, "key 1"),
        (object(), "object"),
        ([{"deep": {2}}], "set"),
    ],
)
def test_put_rejects_non_json_naming_the_key(value: Any, fragment: str) -> None:
    ctx = make()
    with pytest.raises(NotJSONError) as info:
        ctx.put("payload", value)
    assert "context['payload']" in str(info.value)
    assert fragment in str(info.value)
    assert ctx.data == {}
    assert ctx.ops == []


@pytest.mark.parametrize("write", ["setitem", "append", "init_accumulator", "merge", "put_dict"])
def test_every_write_validates_json(write: str) -> None:
    ctx = make()
    calls = {
        "setitem": lambda: ctx.__setitem__("k", {1}),
        "append": lambda: ctx.append("k", {1}),
        "init_accumulator": lambda: ctx.init_accumulator("k", {1}),
        "merge": lambda: ctx.merge({"k": {1}}),
        "put_dict": lambda: ctx.put({"k": {1}}),
    }
    with pytest.raises(NotJSONError, match=r"context\['k'\]"):
        calls[write]()
    assert ctx.ops == []


def test_increment_rejects_nan() -> None:
    with pytest.raises(NotJSONError, match="NaN"):
        make().increment("n", float("nan"))


def test_put_dict_with_one_bad_value_changes_nothing() -> None:
    ctx = make({"a": 0})
    with pytest.raises(NotJSONError, match=r"context\['c'\]"):
        ctx.put({"a": 1, "b": 2, "c": float("nan")})
    assert ctx.data == {"a": 0}
    assert ctx.ops == []


def test_put_dict_with_a_non_str_key_changes_nothing() -> None:
    ctx = make()
    with pytest.raises(TypeError, match="context keys must be strings, got 1"):
        ctx.put({"a": 1, 1: "b"})
    assert ctx.ops == []


@pytest.mark.parametrize("key", [1, None, ("a",)])
def test_keys_must_be_strings(key: Any) -> None:
    ctx = make()
    with pytest.raises(TypeError, match="context keys must be strings"):
        ctx.put(key, 1)
    with pytest.raises(TypeError, match="context keys must be strings"):
        ctx.delete(key)


def test_put_without_a_value_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes a key and a value"):
        make().put("a")


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC),
        decimal.Decimal("19.99"),
        uuid.uuid4(),
    ],
)
def test_values_json_would_stringify_are_refused_and_change_nothing(value: object) -> None:
    ctx = make({"a": 1})

    with pytest.raises(NotJSONError, match=r"context\['at'\]: a \w+ would come back from JSON"):
        ctx.put({"ok": 2, "at": value})
    assert ctx.data == {"a": 1}
    assert ctx.ops == []


def test_replaying_the_ops_on_the_original_data_gives_the_same_context() -> None:
    start = {"a": 1, "log": ["x"]}
    ctx = make({"a": 1, "log": ["x"]})
    ctx.put("a", 2)
    ctx.append("log", "y")
    ctx.increment("n", 2)
    ctx.init_accumulator("acc", [])
    ctx.delete("a")
    assert apply_ops(start, ctx.ops) == ctx.data


def test_read_only_context_refuses_every_write_but_reads() -> None:
    ctx = Context({"a": 1}, read_only=True)
    assert ctx["a"] == 1
    writes = [
        lambda: ctx.put("a", 2),
        lambda: ctx.__setitem__("a", 2),
        lambda: ctx.delete("a"),
        lambda: ctx.append("l", 1),
        lambda: ctx.increment("n"),
        lambda: ctx.init_accumulator("l"),
        lambda: ctx.merge({"a": 2}),
        lambda: ctx.update("a", lambda v: v),
    ]
    for write in writes:
        with pytest.raises(ReadOnlyContextError):
            write()
    assert ctx.data == {"a": 1}
    assert ctx.ops == []
