"""A workflow definition as a graph: nodes, edges and a layered layout.

The definition is a tree of sequences, so the layout is built along with it: a sequence
stacks its parts top to bottom, the branches of a block sit side by side. Every node
gets its own cell of a grid, which is what keeps nodes from overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from durable.dsl import registry
from durable.dsl.nodes import (
    Branch,
    Definition,
    ForeachNode,
    LoopNode,
    Node,
    OnDecisionNode,
    ParallelNode,
    StepNode,
    SwitchNode,
)

CELL_WIDTH = 180
CELL_HEIGHT = 90

# An edge still looking for its target: (source node id, label).
Exit: TypeAlias = tuple[str, str]


resolve = registry.resolve


def generate(workflow: Any) -> dict[str, Any]:
    """`{"nodes": [...], "edges": [...]}` for a workflow class or name (see SPEC §10).

    Join nodes also name the block they close (`"block"`); back-edges have `"back": True`.
    """
    definition = resolve(workflow)
    builder = _Builder(definition)
    return builder.build()


def key_label(key: Any) -> str:
    """A branch key as an edge label: strings as they are, other values as Python spells them."""
    if isinstance(key, str) and key:
        return key
    return repr(key)


@dataclass
class _Box:
    """A laid-out part of the graph: `width` columns by `height` rows, node centres inside."""

    width: int = 0
    height: int = 0
    cells: list[tuple[str, float, int]] = field(default_factory=list)

    def put(self, other: _Box, dx: float, dy: int) -> None:
        self.cells += [(node_id, x + dx, y + dy) for node_id, x, y in other.cells]


def _cell(node_id: str) -> _Box:
    return _Box(1, 1, [(node_id, 0.5, 0)])


def _stack(boxes: list[_Box]) -> _Box:
    out = _Box(width=max((box.width for box in boxes), default=0))
    for box in boxes:
        out.put(box, (out.width - box.width) / 2, out.height)
        out.height += box.height
    return out


def _side_by_side(boxes: list[_Box]) -> _Box:
    # An empty branch still gets a column: the edge that stands for it runs there.
    out = _Box(height=max((box.height for box in boxes), default=0))
    for box in boxes:
        width = max(box.width, 1)
        out.put(box, out.width + (width - box.width) / 2, 0)
        out.width += width
    return out


def _joined(first: str, second: str) -> str:
    return f"{first}, {second}" if first and second else first or second


class _Builder:
    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, Any]] = []
        self.taken = set(definition.by_name)

    def build(self) -> dict[str, Any]:
        start = self.add(self.fresh_id("__start__"), "start", "start")
        exits, body = self.branch(self.definition.nodes, [(start, "")])
        end = self.add(self.fresh_id("__end__"), "end", "end")
        self.connect(exits, end)
        layout = _stack([_cell(start), body, _cell(end)])
        for node_id, column, row in layout.cells:
            self.nodes[node_id]["position"] = {
                "x": round(column * CELL_WIDTH),
                "y": round((row + 0.5) * CELL_HEIGHT),
            }
        return {"nodes": list(self.nodes.values()), "edges": self.edges}

    def fresh_id(self, base: str) -> str:
        """An id for a node the definition does not name (start, end, joins)."""
        node_id, n = base, 1
        while node_id in self.taken:
            n += 1
            node_id = f"{base}~{n}"
        self.taken.add(node_id)
        return node_id

    def add(self, node_id: str, node_type: str, label: str, **extra: Any) -> str:
        self.nodes[node_id] = {"id": node_id, "type": node_type, "label": label, **extra}
        return node_id

    def connect(self, exits: list[Exit], target: str, label: str = "", back: bool = False) -> None:
        for source, pending in exits:
            self.edges.append(
                {"from": source, "to": target, "label": _joined(pending, label), "back": back}
            )

    def branch(self, seq: Branch, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        boxes = []
        for node in seq:
            exits, box = self.node(node, exits)
            boxes.append(box)
        return exits, _stack(boxes)

    def node(self, node: Node, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        if isinstance(node, StepNode):
            self.connect(exits, self.add(node.name, node.kind, node.name))
            return [(node.name, "")], _cell(node.name)
        if isinstance(node, OnDecisionNode):
            return self.on_decision(node, exits)
        if isinstance(node, SwitchNode):
            return self.switch(node, exits)
        if isinstance(node, ParallelNode):
            return self.parallel(node, exits)
        if isinstance(node, ForeachNode):
            return self.foreach(node, exits)
        return self.loop(node, exits)

    def on_decision(self, node: OnDecisionNode, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        # No node of its own: the decision's outgoing edges carry the branch keys. When
        # other steps stand between the decision and the block, the label names it.
        def labelled(label: str) -> list[Exit]:
            return [
                (
                    source,
                    _joined(
                        pending, label if source == node.decision else f"{node.decision} = {label}"
                    ),
                )
                for source, pending in exits
            ]

        outs: list[Exit] = []
        boxes = []
        for key, body in node.branches:
            branch_exits, box = self.branch(body, labelled(key_label(key)))
            outs += branch_exits
            boxes.append(box)
        # A result no branch matches continues after the block, down an empty column of
        # its own in the middle, so its edge and label run clear of the branches.
        outs += labelled("otherwise")
        boxes.insert(len(boxes) // 2, _Box())
        return outs, _side_by_side(boxes)

    def switch(self, node: SwitchNode, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        self.connect(exits, self.add(node.name, "switch", node.name))
        outs: list[Exit] = []
        boxes = []
        arms = [(key_label(key), body) for key, body in node.cases]
        if node.default is not None:
            arms.append(("default", node.default))
        for label, body in arms:
            branch_exits, box = self.branch(body, [(node.name, label)])
            outs += branch_exits
            boxes.append(box)
        if node.default is None:
            outs.append((node.name, "otherwise"))
            boxes.insert(len(boxes) // 2, _Box())
        return outs, _stack([_cell(node.name), _side_by_side(boxes)])

    def parallel(self, node: ParallelNode, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        self.connect(exits, self.add(node.name, "parallel", node.name))
        join = self.fresh_id(f"{node.name}:join")
        exits, boxes = [], []
        for body in node.branches:
            branch_exits, box = self.branch(body, [(node.name, "")])
            exits += branch_exits
            boxes.append(box)
        self.add(join, "join", "join", block=node.name)
        self.connect(exits if node.branches else [(node.name, "")], join)
        return [(join, "")], _stack([_cell(node.name), _side_by_side(boxes), _cell(join)])

    def foreach(self, node: ForeachNode, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        self.connect(exits, self.add(node.name, "foreach", node.name))
        join = self.fresh_id(f"{node.name}:join")
        body_exits, box = self.branch(node.body, [(node.name, "each item")])
        self.connect(body_exits, self.add(join, "join", "join", block=node.name))
        return [(join, "")], _stack([_cell(node.name), box, _cell(join)])

    def loop(self, node: LoopNode, exits: list[Exit]) -> tuple[list[Exit], _Box]:
        self.connect(exits, self.add(node.name, "loop", node.name))
        body_exits, box = self.branch(node.body, [(node.name, "")])
        self.connect(body_exits, node.name, "repeat", back=True)
        return [(node.name, "done")], _stack([_cell(node.name), box])
