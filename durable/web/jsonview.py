"""A JSON value as a collapsible tree (nested `<details>`). Rendered on the server: no
script is needed to read it, only to copy.

Everything is escaped here. A large or deep value is cut short in the tree: at most
MAX_CHILDREN entries per object or array, MAX_DEPTH levels, and MAX_NODES entries in all;
then the viewer also carries the full text for the copy button. A whole tree is its own
copy: every key and scalar in it is a JSON literal, and the script rebuilds the value
from them (so a live update does not send each value twice).
"""

from __future__ import annotations

import json
from html import escape as _escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

MAX_CHILDREN = 200
MAX_DEPTH = 12
MAX_NODES = 2_000
# Levels open when the page loads; deeper ones start collapsed.
OPEN_DEPTH = 2


def escape(text: str) -> str:
    """Text content escaped (quotes need not be: none of this goes in an attribute)."""
    return _escape(text, quote=False)


def json_text(value: Any) -> str:
    """Indented JSON (what the copy button copies); keys sorted, non-JSON values as text."""
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (RecursionError, ValueError):
        return str(value)


def _scalar(value: Any) -> str:
    if value is None:
        return '<span class="jv-null">null</span>'
    if isinstance(value, bool):
        return f'<span class="jv-bool">{"true" if value else "false"}</span>'
    if isinstance(value, int | float):
        return f'<span class="jv-num">{escape(json.dumps(value))}</span>'
    text = json.dumps(str(value), ensure_ascii=False)
    return f'<span class="jv-str">{escape(text)}</span>'


class _Tree:
    def __init__(self) -> None:
        self.nodes = 0
        self.containers = 0
        self.cut = False

    def render(self, value: Any, key: str | None, depth: int) -> str:
        self.nodes += 1
        label = f'<span class="jv-key">{escape(json.dumps(key, ensure_ascii=False))}</span>: '
        label = label if key is not None else ""
        if not isinstance(value, dict | list) or not value:
            empty = "{}" if isinstance(value, dict) else "[]"
            shown = _scalar(value) if not isinstance(value, dict | list) else empty
            return f'<div class="jv-row">{label}{shown}</div>'
        is_dict = isinstance(value, dict)
        self.containers += 1
        count = len(value)
        brackets = ("{", "}") if is_dict else ("[", "]")
        noun = ("key" if is_dict else "item") + ("" if count == 1 else "s")
        summary = (
            f'<summary>{label}{brackets[0]}<span class="jv-count">{count} {noun}</span>'
            f"{brackets[1]}</summary>"
        )
        if depth >= MAX_DEPTH or self.nodes >= MAX_NODES:
            self.cut = True
            body = '<div class="jv-more">… (copy to see all)</div>'
        else:
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            rows = []
            for child_key, child in items[:MAX_CHILDREN]:
                if self.nodes >= MAX_NODES:
                    break
                rows.append(self.render(child, str(child_key) if is_dict else None, depth + 1))
            hidden = count - len(rows)
            if hidden > 0:
                self.cut = True
                rows.append(f'<div class="jv-more">… and {hidden} more</div>')
            body = "".join(rows)
        opened = " open" if depth < OPEN_DEPTH else ""
        return f'<details class="jv-node"{opened}>{summary}{body}</details>'


def json_view(value: Any, element_id: str = "") -> SafeString:
    """The viewer: a toolbar (copy; expand and collapse when there is more than one level),
    the tree, and the full text."""
    attr = f' id="{_escape(element_id)}"' if element_id else ""
    builder = _Tree()
    tree = builder.render(value, None, 0)
    folds = (
        '<button type="button" data-jv="expand">Expand all</button>'
        '<button type="button" data-jv="collapse">Collapse all</button>'
        if builder.containers > 1
        else ""
    )
    full = f'<template class="jv-text">{escape(json_text(value))}</template>'
    return mark_safe(
        f'<div class="json-view"{attr}>'
        f'<div class="jv-tools"><button type="button" data-jv="copy">Copy</button>{folds}</div>'
        f'<div class="jv-tree">{tree}</div>{full if builder.cut else ""}</div>'
    )
