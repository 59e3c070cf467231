"""A self-contained SVG of a graph, drawn at the positions `generate` computed.

Every node is a `<g id="node-…" data-node-id="…" class="node type-… status-…">`, so a page
that inlines the SVG can find and restyle nodes; colours live in the `<style>` block.
"""

from __future__ import annotations

import itertools
import re
from html import escape
from typing import Any, TypeAlias

from durable.graph.build import CELL_HEIGHT, CELL_WIDTH
from durable.graph.export import STATUS_COLOURS

NODE_WIDTH = 150
NODE_HEIGHT = 50
# Half sizes of the drawn shape per node type (the rest are NODE_WIDTH x NODE_HEIGHT).
_HALF: dict[str, tuple[float, float]] = {
    "start": (18, 18),
    "end": (18, 18),
    "join": (40, 12),
}
_LANE_GAP = 14
_MARGIN = 20
_CHARS_THAT_FIT = 21


def _half(node: dict[str, Any]) -> tuple[float, float]:
    return _HALF.get(node["type"], (NODE_WIDTH / 2, NODE_HEIGHT / 2))


def _css_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _style() -> str:
    rules = [
        ".node .shape{fill:#ffffff;stroke:#6b7280;stroke-width:1.5}",
        ".node text{font:12px sans-serif;fill:#111827;text-anchor:middle;"
        "dominant-baseline:central;pointer-events:none}",
        ".node.type-start .shape{fill:#e5e7eb}",
        ".node.type-end .shape{fill:#e5e7eb}",
        ".node.type-join .shape{fill:#f3f4f6}",
        ".node.active .shape{stroke-width:3}",
        ".edge path{fill:none;stroke:#9ca3af;stroke-width:1.5}",
        ".edge.back path{stroke-dasharray:5 4}",
        ".edge text{font:10px sans-serif;fill:#374151;text-anchor:middle;"
        "paint-order:stroke;stroke:#ffffff;stroke-width:3px}",
        ".arrowhead{fill:#9ca3af}",
        ".progress .track{fill:#e5e7eb}",
        ".progress .bar{fill:#2563eb}",
    ]
    for status, (fill, stroke) in STATUS_COLOURS.items():
        rules.append(f".node.status-{status} .shape{{fill:{fill};stroke:{stroke}}}")
    # Scoped to this SVG: a page inlines it, and its rules must not style the page.
    return "\n".join(f".durable-graph {rule}" for rule in rules)


def _shape(node: dict[str, Any], x: float, y: float) -> str:
    hw, hh = _half(node)
    kind = node["type"]
    if kind == "start":
        return f'<circle class="shape" cx="{x}" cy="{y}" r="{hw}"/>'
    if kind == "end":
        return (
            f'<circle class="shape" cx="{x}" cy="{y}" r="{hw}"/>'
            f'<circle class="shape inner" cx="{x}" cy="{y}" r="{hw - 5}"/>'
        )
    if kind in ("decision", "switch"):
        points = [(x, y - hh), (x + hw, y), (x, y + hh), (x - hw, y)]
    elif kind in ("parallel", "foreach"):
        points = [(x - hw + 12, y - hh), (x + hw - 12, y - hh), (x + hw, y + hh), (x - hw, y + hh)]
    elif kind == "loop":
        points = [
            (x - hw + 14, y - hh),
            (x + hw - 14, y - hh),
            (x + hw, y),
            (x + hw - 14, y + hh),
            (x - hw + 14, y + hh),
            (x - hw, y),
        ]
    else:
        return (
            f'<rect class="shape" x="{x - hw}" y="{y - hh}" width="{2 * hw}" '
            f'height="{2 * hh}" rx="8"/>'
        )
    coords = " ".join(f"{px},{py}" for px, py in points)
    return f'<polygon class="shape" points="{coords}"/>'


def _text(label: str, x: float, y: float, width: float) -> str:
    label = " ".join(label.split())
    fit = ""
    if len(label) > _CHARS_THAT_FIT:
        fit = f' textLength="{width - 10}" lengthAdjust="spacingAndGlyphs"'
    return f'<text x="{x}" y="{y}"{fit}>{escape(label)}</text>'


class _Canvas:
    def __init__(self, g: dict[str, Any]) -> None:
        self.nodes = {node["id"]: node for node in g["nodes"]}
        self.lanes = 0
        self.right = max(
            (n["position"]["x"] + _half(n)[0] for n in g["nodes"]), default=float(CELL_WIDTH)
        )

    def obstacles(self, top: float, bottom: float, skip: set[str]) -> list[dict[str, Any]]:
        return [
            n
            for n in self.nodes.values()
            if n["id"] not in skip and top < n["position"]["y"] < bottom
        ]

    def edge_path(self, edge: dict[str, Any]) -> tuple[str, float, float]:
        """The path's `d` and where its label goes."""
        source, target = self.nodes[edge["from"]], self.nodes[edge["to"]]
        sx, sy = source["position"]["x"], source["position"]["y"]
        tx, ty = target["position"]["x"], target["position"]["y"]
        shw, shh = _half(source)
        thw, thh = _half(target)
        if not edge.get("back") and ty > sy:
            start, end = (sx, sy + shh), (tx, ty - thh)
            between = self.obstacles(sy, ty, {source["id"], target["id"]})
            if not any(self._hits(n, start, end) for n in between):
                return (
                    f"M{start[0]},{start[1]} L{end[0]},{end[1]}",
                    (start[0] + end[0]) / 2,
                    (start[1] + end[1]) / 2,
                )
            lane = self._lane(between)
            d = (
                f"M{start[0]},{start[1]} L{start[0]},{start[1] + 12} L{lane},{start[1] + 12} "
                f"L{lane},{end[1] - 12} L{end[0]},{end[1] - 12} L{end[0]},{end[1]}"
            )
            return d, lane, (start[1] + end[1]) / 2
        # A back-edge (or one going up): out of the source's right side, up a lane on the
        # right, into the target's right side.
        top, bottom = min(sy, ty), max(sy, ty)
        lane = self._lane([*self.obstacles(top - 1, bottom + 1, set()), source, target])
        d = f"M{sx + shw},{sy} L{lane},{sy} L{lane},{ty} L{tx + thw},{ty}"
        return d, lane, (sy + ty) / 2

    def _lane(self, obstacles: list[dict[str, Any]]) -> float:
        self.lanes += 1
        edge = max((n["position"]["x"] + _half(n)[0] for n in obstacles), default=0.0)
        lane = edge + _LANE_GAP * self.lanes
        self.right = max(self.right, lane)
        return lane

    @staticmethod
    def _hits(node: dict[str, Any], start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Whether the segment start-end passes through the node's box (sampled)."""
        hw, hh = _half(node)
        x, y = node["position"]["x"], node["position"]["y"]
        for i in range(1, 64):
            px = start[0] + (end[0] - start[0]) * i / 64
            py = start[1] + (end[1] - start[1]) * i / 64
            if abs(px - x) <= hw + 4 and abs(py - y) <= hh + 4:
                return True
        return False


Box: TypeAlias = tuple[float, float, float, float]  # left, top, right, bottom

# Edge labels are 10px sans-serif: a conservative box for their text.
_LABEL_CHAR_WIDTH = 6.2
_LABEL_HEIGHT = 13.0
_LABEL_PAD = 3.0


def node_box(node: dict[str, Any]) -> Box:
    hw, hh = _half(node)
    x, y = node["position"]["x"], node["position"]["y"]
    return (x - hw, y - hh, x + hw, y + hh)


def label_size(text: str) -> tuple[float, float]:
    return len(text) * _LABEL_CHAR_WIDTH + 2 * _LABEL_PAD, _LABEL_HEIGHT + _LABEL_PAD


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def _label_spots(d: str, width: float) -> list[tuple[float, float]]:
    """Where a label may sit along path `d`, best first: on its longest segments, nearer
    the middle first, then beside them."""
    points = _points(d)
    segments = sorted(
        itertools.pairwise(points),
        key=lambda seg: -(abs(seg[1][0] - seg[0][0]) + abs(seg[1][1] - seg[0][1])),
    )
    on, beside = [], []
    for (x0, y0), (x1, y1) in segments:
        for t in (0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9):
            x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
            on.append((x, y))
            if x0 == x1:  # a vertical run: the label may also sit to its right or left
                beside += [(x + width / 2 + 2, y), (x - width / 2 - 2, y)]
    return on + beside


class Drawing:
    """Paths and label positions for every edge: labels clear of nodes and each other."""

    def __init__(self, g: dict[str, Any]) -> None:
        self.canvas = _Canvas(g)
        self.nodes = [node_box(n) for n in g["nodes"]]
        self.edges: list[tuple[dict[str, Any], str, tuple[float, float] | None]] = []
        self.labels: list[Box] = []
        for edge in g["edges"]:
            d, lx, ly = self.canvas.edge_path(edge)
            text = " ".join(edge["label"].split())
            spot = self._place(text, d, (lx, ly)) if text else None
            self.edges.append((edge, d, spot))

    def _place(self, text: str, d: str, fallback: tuple[float, float]) -> tuple[float, float]:
        width, height = label_size(text)
        for x, y in [*_label_spots(d, width), fallback]:
            box = (x - width / 2, y - height / 2, x + width / 2, y + height / 2)
            if x - width / 2 < 0 or any(overlaps(box, b) for b in [*self.nodes, *self.labels]):
                continue
            self.labels.append(box)
            self.canvas.right = max(self.canvas.right, box[2])
            return x, y
        x, y = fallback
        self.labels.append((x - width / 2, y - height / 2, x + width / 2, y + height / 2))
        return fallback


def to_svg(g: dict[str, Any]) -> str:
    """The graph as an `<svg>` element, with its styles inlined."""
    drawing = Drawing(g)
    canvas = drawing.canvas
    edges = []
    for edge, d, spot in drawing.edges:
        kind = "edge back" if edge.get("back") else "edge"
        label = ""
        if spot is not None:
            text = escape(" ".join(edge["label"].split()))
            label = f'<text x="{round(spot[0], 1)}" y="{round(spot[1], 1)}">{text}</text>'
        edges.append(
            f'<g class="{kind}" data-from="{_attr(edge["from"])}" '
            f'data-to="{_attr(edge["to"])}"><path d="{d}" marker-end="url(#durable-arrow)"/>'
            f"{label}</g>"
        )
    nodes = []
    used: set[str] = set()
    for node in g["nodes"]:
        x, y = node["position"]["x"], node["position"]["y"]
        element_id = _unique(f"node-{_css_name(node['id'])}", used)
        state = node.get("execution_state") or {}
        classes = ["node", f"type-{_css_name(node['type'])}"]
        if state.get("status"):
            classes.append(f"status-{_css_name(str(state['status']))}")
        if state.get("active"):
            classes.append("active")
        title = node["label"]
        if state.get("status"):
            title += f" ({state['status']})"
        bar = _progress_bar(node)
        text_y = y - 6 if bar else y
        nodes.append(
            f'<g id="{element_id}" class="{" ".join(classes)}" '
            f'data-node-id="{_attr(node["id"])}"><title>{escape(title)}</title>'
            f"{_shape(node, x, y)}{_text(node['label'], x, text_y, 2 * _half(node)[0])}"
            f"{bar}</g>"
        )
    width = round(canvas.right + _MARGIN)
    height = round(max((n["position"]["y"] for n in g["nodes"]), default=0) + CELL_HEIGHT / 2)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="durable-graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<style>{_style()}</style>"
        '<defs><marker id="durable-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path class="arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
        f'<g class="edges">{"".join(edges)}</g><g class="nodes">{"".join(nodes)}</g></svg>'
    )


def progress_fraction(progress: Any) -> float | None:
    """`{"done", "total"}` as a fraction in [0, 1]; None without a usable total."""
    if not isinstance(progress, dict):
        return None
    try:
        done, total = float(progress.get("done") or 0), float(progress.get("total") or 0)
    except (TypeError, ValueError):
        return None
    if total <= 0:
        return None
    return max(0.0, min(1.0, done / total))


def _progress_bar(node: dict[str, Any]) -> str:
    """A bar along the bottom of a step or foreach node: `progress` done / total."""
    fraction = progress_fraction(node.get("progress"))
    if fraction is None or node["type"] in _HALF:
        return ""
    x, y = node["position"]["x"], node["position"]["y"]
    hw = _half(node)[0] - 22 if node["type"] == "foreach" else _half(node)[0] - 12
    done, total = node["progress"].get("done"), node["progress"]["total"]
    caption = f"{_number(done)} / {_number(total)}"
    return (
        f'<g class="progress" data-done="{_number(done)}" data-total="{_number(total)}">'
        f"<title>{escape(caption)}</title>"
        f'<rect class="track" x="{x - hw}" y="{y + 9}" width="{2 * hw}" height="6" rx="3"/>'
        f'<rect class="bar" x="{x - hw}" y="{y + 9}" width="{round(2 * hw * fraction, 1)}" '
        f'height="6" rx="3"/></g>'
    )


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return escape(str(value))


def _attr(text: str) -> str:
    """An attribute value that survives XML's whitespace normalisation unchanged."""
    return escape(text).replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def _unique(candidate: str, used: set[str]) -> str:
    element_id, n = candidate, 1
    while element_id in used:
        n += 1
        element_id = f"{candidate}-{n}"
    used.add(element_id)
    return element_id
