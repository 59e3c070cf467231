"""Text exports of a graph: Graphviz DOT, Mermaid flowchart, Cytoscape.js elements."""

from __future__ import annotations

import re
from typing import Any

# Fill and stroke per step/execution status, shared by the Mermaid and SVG exports.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#f3f4f6", "#9ca3af"),
    "skipped": ("#f9fafb", "#d1d5db"),
    "running": ("#dbeafe", "#2563eb"),
    "waiting": ("#fef3c7", "#d97706"),
    "retrying": ("#ffedd5", "#ea580c"),
    "completed": ("#dcfce7", "#16a34a"),
    "failed": ("#fee2e2", "#dc2626"),
    "cancelled": ("#e5e7eb", "#4b5563"),
    "compensating": ("#fae8ff", "#a21caf"),
    "compensated": ("#f3e8ff", "#7c3aed"),
    "compensation_failed": ("#fee2e2", "#7f1d1d"),
}

# Shapes per node type: (DOT shape, Mermaid opening bracket, Mermaid closing bracket).
_SHAPES: dict[str, tuple[str, str, str]] = {
    "start": ("circle", "((", "))"),
    "end": ("doublecircle", "(((", ")))"),
    "step": ("box", "[", "]"),
    "decision": ("diamond", "{", "}"),
    "switch": ("diamond", "{", "}"),
    "parallel": ("trapezium", "[/", "\\]"),
    "foreach": ("trapezium", "[/", "\\]"),
    "join": ("invtrapezium", "[\\", "/]"),
    "loop": ("hexagon", "{{", "}}"),
}


def _dot_string(text: str) -> str:
    # Graphviz reads HTML entities in every label, so `&` is one too.
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return '"' + escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n") + '"'


def to_dot(g: dict[str, Any]) -> str:
    """Graphviz DOT; positions are left to Graphviz (`dot -Tsvg`)."""
    lines = [
        "digraph workflow {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=11, style=filled, fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in g["nodes"]:
        shape = _SHAPES.get(node["type"], ("box", "", ""))[0]
        attrs = [f"label={_dot_string(node['label'])}", f"shape={shape}"]
        status = (node.get("execution_state") or {}).get("status")
        if status:
            attrs.append(f"class={_dot_string('status-' + str(status))}")
        lines.append(f"  {_dot_string(node['id'])} [{', '.join(attrs)}];")
    for edge in g["edges"]:
        attrs = []
        if edge["label"]:
            attrs.append(f"label={_dot_string(edge['label'])}")
        if edge.get("back"):
            attrs += ["style=dashed", "constraint=false"]
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {_dot_string(edge['from'])} -> {_dot_string(edge['to'])}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Inside "..." Mermaid takes HTML entities; quotes, brackets, pipes and markup become
    # entities so nothing in a label can end it early.
    out = []
    for char in text.replace("\r\n", "\n").replace("\r", "\n"):
        if char == "\n":
            out.append("<br>")
        elif char.isalnum() or char in " _-.,:/@~=+?!'":
            out.append(char)
        else:
            out.append(f"#{ord(char)};")
    return '"' + "".join(out) + '"'


def to_mermaid(g: dict[str, Any]) -> str:
    """A Mermaid flowchart. Node ids are replaced by `n0, n1, ...` (Mermaid ids are bare)."""
    ids = {node["id"]: f"n{i}" for i, node in enumerate(g["nodes"])}
    lines = ["flowchart TD"]
    statuses: dict[str, list[str]] = {}
    for node in g["nodes"]:
        _, opening, closing = _SHAPES.get(node["type"], ("", "[", "]"))
        lines.append(f"  {ids[node['id']]}{opening}{_mermaid_text(node['label'])}{closing}")
        status = (node.get("execution_state") or {}).get("status")
        if status:
            statuses.setdefault(_css_name(str(status)), []).append(ids[node["id"]])
    for edge in g["edges"]:
        arrow = "-.->" if edge.get("back") else "-->"
        label = f"|{_mermaid_text(edge['label'])}|" if edge["label"] else ""
        lines.append(f"  {ids[edge['from']]} {arrow}{label} {ids[edge['to']]}")
    for status, members in sorted(statuses.items()):
        fill, stroke = STATUS_COLOURS.get(status, STATUS_COLOURS["pending"])
        lines.append(f"  classDef status_{status} fill:{fill},stroke:{stroke}")
        lines.append(f"  class {','.join(members)} status_{status}")
    return "\n".join(lines) + "\n"


def _css_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def to_cytoscape(g: dict[str, Any]) -> dict[str, Any]:
    """Cytoscape.js elements (`cy.add(result["elements"])`), with the computed positions."""
    nodes = []
    for node in g["nodes"]:
        data = {key: value for key, value in node.items() if key != "position"}
        nodes.append({"data": data, "position": dict(node["position"])})
    taken = {node["id"] for node in g["nodes"]}
    edge_ids = []
    for i in range(len(g["edges"])):
        edge_id = f"e{i}"
        while edge_id in taken:
            edge_id = f"_{edge_id}"
        edge_ids.append(edge_id)
    edges = [
        {
            "data": {
                "id": edge_ids[i],
                "source": edge["from"],
                "target": edge["to"],
                "label": edge["label"],
                "back": bool(edge.get("back")),
            }
        }
        for i, edge in enumerate(g["edges"])
    ]
    result: dict[str, Any] = {"elements": {"nodes": nodes, "edges": edges}}
    if "execution" in g:
        result["data"] = {"execution": g["execution"]}
    return result
