"""The JSON viewer and the waterfall's axis: pure functions, no database."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from durable.web import jsonview
from durable.web.jsonview import json_text, json_view
from durable.web.timeline import duration_text, ticks


def test_the_viewer_escapes_keys_and_values_in_the_tree_and_the_copy() -> None:
    value = {"<script>": '"><img src=x onerror=alert(1)>', "n": [1, None, True]}
    out = json_view(value)
    assert "<script>" not in out
    assert "<img" not in out
    assert "&lt;script&gt;" in out
    assert '<span class="jv-null">null</span>' in out
    assert '<span class="jv-bool">true</span>' in out
    # A whole tree is its own copy (the script reads its JSON literals back).
    assert "<template" not in out
    # A tree cut short carries the full text, escaped, for the copy.
    deep: object = "x"
    for _ in range(jsonview.MAX_DEPTH + 2):
        deep = [deep]
    cut = json_view({**value, "deep": deep})
    template = re.search(r'<template class="jv-text">(.*)</template>', cut, re.S)
    assert template is not None
    assert "<script>" not in template.group(1)
    assert '"<script>"' in html.unescape(template.group(1))


def test_the_tree_is_cut_short_but_the_copy_keeps_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jsonview, "MAX_CHILDREN", 5)
    out = json_view(list(range(12)))
    assert "… and 7 more" in out
    assert json_text(list(range(12))) in html.unescape(out)

    deep: object = "bottom"
    for _ in range(40):
        deep = [deep]
    out = json_view(deep)
    assert out.count("<details") == jsonview.MAX_DEPTH + 1
    assert "copy to see all" in out


def test_levels_below_the_second_start_closed() -> None:
    out = json_view({"a": {"b": {"c": 1}}})
    assert out.count('<details class="jv-node" open>') == 2
    assert out.count('<details class="jv-node">') == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.34, "340 ms"),
        (2.5, "2.5 s"),
        (42, "42 s"),
        (65, "1 min 5 s"),
        (3600 * 2 + 180, "2 h 3 min"),
        (timedelta(days=3, hours=4).total_seconds(), "3 d 4 h"),
    ],
)
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_axis_has_a_few_round_ticks_from_zero() -> None:
    axis = ticks(12.3)
    assert [t.at for t in axis] == [0, 2, 4, 6, 8, 10]  # not 12: too near the end
    assert axis[1].label == "2 s"
    assert 2 <= len(ticks(0.004)) <= 9
    assert all(2 <= len(ticks(total)) <= 9 for total in (0.5, 59, 61, 3600, 86400 * 3))
