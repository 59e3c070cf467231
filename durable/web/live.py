"""What the execution page's socket sends: the page as addressable pieces, and only the
pieces that changed.

The page is cut into items, each an element with an id: the summary, each step of the step
list, each graph node's state (the SVG itself is sent once, with the page), the waterfall's
scale and axis and each of its bars, each attempt, the context, each entry of the history.
`Tracker.frame` compares every item with what it sent last and returns htmx out-of-band
fragments for those that changed (replaced), appeared (appended to their container) or
went away (deleted). The page says what it was rendered with (`digest`, a hash of its
items but the clock's); when the first read still matches it, the first frame sends only
the clock, else whole regions, so a page that changed between its render and the socket's
connection catches up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string

from durable.web.history import ExecutionHistory
from durable.web.presenters import ExecutionView

# Regions (whole) the first frame sends; the graph's SVG is not one: it never changes.
FIRST_FRAME_REGIONS = (
    "summary",
    "steps",
    "graph_states",
    "timeline",
    "attempts",
    "context",
    "history",
)
# Items that change as time passes (a running run's axis): not part of the page's digest.
CLOCK = frozenset({"gantt-scale", "gantt-axis"})
_FIRST_TAG = re.compile(r"\s*<([a-zA-Z][\w-]*)")


@dataclass(frozen=True)
class Item:
    key: str  # the element's id
    html: str  # the element, as the page renders it
    parent: str | None = None  # the container a new one is appended to


def out_of_band(html: str, swap: str = "true") -> str:
    """`html` (one element) marked to replace the page's element of the same id."""
    match = _FIRST_TAG.match(html)
    if match is None:
        raise ValueError("an out-of-band fragment must start with an element")
    return f'{html[: match.end()]} hx-swap-oob="{swap}"{html[match.end() :]}'


def _render(template: str, context: dict[str, Any]) -> str:
    return render_to_string(f"durable/partials/{template}.html", context).strip()


def items(view: ExecutionView, history: ExecutionHistory) -> Iterator[Item]:
    yield Item("region-summary", _render("summary", {"view": view}))
    for index, step in enumerate(view.steps):
        html = _render("step_state", {"s": step, "index": index})
        yield Item(f"step-{index}", html, "step-states")
    for index, (label, value) in enumerate(view.foreach_progress):
        html = _render("foreach_state", {"label": label, "value": value, "index": index})
        yield Item(f"foreach-{index}", html, "step-states")
    for node in view.graph_nodes:
        yield Item(f"gs-{node.index}", _render("node_state", {"node": node}), "graph-states")
    chart = view.waterfall
    yield Item("gantt-scale", _render("gantt_scale", {"chart": chart}))
    yield Item("gantt-axis", _render("gantt_axis", {"chart": chart}))
    for bar in chart.bars:
        yield Item(f"bar-{bar.row.pk}", _render("gantt_row", {"bar": bar}), "gantt-rows")
    for row in view.attempts:
        html = _render("attempt", {"row": row, "payloads_hidden": view.payloads_hidden})
        yield Item(f"attempt-{row.pk}", html, "attempt-list")
    yield Item("region-context", _render("context", {"view": view}))
    for entry in history.entries:
        yield Item(f"h-{entry.key}", _render("history_entry", {"entry": entry}), "history-list")


def digest(pieces: dict[str, str]) -> str:
    """A short hash of the page's pieces, the clock's aside."""
    sha = hashlib.sha256()
    for key in sorted(pieces):
        if key not in CLOCK:
            sha.update(f"{key}\0{pieces[key]}\0".encode())
    return sha.hexdigest()[:32]


def page_digest(view: ExecutionView, history: ExecutionHistory) -> str:
    return digest({item.key: item.html for item in items(view, history)})


def regions(view: ExecutionView, history: ExecutionHistory) -> str:
    context = {"view": view, "history": history}
    return "".join(out_of_band(_render(name, context)) for name in FIRST_FRAME_REGIONS)


class Tracker:
    """What one socket has sent, and what to send next."""

    def __init__(self, page_digest: str = "") -> None:
        self.sent: dict[str, str] | None = None
        self.page_digest = page_digest

    def frame(self, view: ExecutionView, history: ExecutionHistory) -> str:
        current = {item.key: item for item in items(view, history)}
        if self.sent is None:
            self.sent = {key: item.html for key, item in current.items()}
            if self.page_digest and digest(self.sent) == self.page_digest:
                return "".join(out_of_band(current[key].html) for key in sorted(CLOCK))
            return regions(view, history)
        parts = []
        for key, item in current.items():
            before = self.sent.get(key)
            if before == item.html:
                continue
            if before is None and item.parent is not None:
                parts.append(out_of_band(f"<div>{item.html}</div>", f"beforeend:#{item.parent}"))
            else:
                parts.append(out_of_band(item.html))
            self.sent[key] = item.html
        for key in [key for key in self.sent if key not in current]:
            parts.append(f'<div id="{key}" hx-swap-oob="delete"></div>')
            del self.sent[key]
        return "".join(parts)
