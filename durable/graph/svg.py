"""A self-contained SVG of a graph, drawn at the positions `generate` computed.

Every node is a `<g id="node-…" data-node-id="…" class="node type-… status-…">`, so a page
that inlines the SVG can find and restyle nodes; colours live in the `<style>` block.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

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


def to_svg(g: dict[str, Any]) -> str:
    """The graph as an `<svg>` element, with its styles inlined."""
    canvas = _Canvas(g)
    edges = []
    for edge in g["edges"]:
        d, lx, ly = canvas.edge_path(edge)
        kind = "edge back" if edge.get("back") else "edge"
        label = ""
        if edge["label"]:
            label = f'<text x="{lx}" y="{ly}">{escape(" ".join(edge["label"].split()))}</text>'
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
        nodes.append(
            f'<g id="{element_id}" class="{" ".join(classes)}" '
            f'data-node-id="{_attr(node["id"])}"><title>{escape(title)}</title>'
            f"{_shape(node, x, y)}{_text(node['label'], x, y, 2 * _half(node)[0])}</g>"
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
