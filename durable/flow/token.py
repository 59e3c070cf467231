"""A token marks one thread of control in an execution: which node, inside which fan-outs.

An execution without parallel/foreach has one token. A fan-out gives each branch (or
item) its own token carrying the ops it made since the fan-out; the join merges them.
Tokens are stored as JSON on queued tasks and on open fan-outs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from durable.flow.ops import Op

_INHERIT: Any = object()


def scope_key_of(data: dict[str, Any]) -> str:
    """`Token.from_json(data).scope_key()`, without making the token (a checkpoint asks it
    of every task it records)."""
    return _scope_key(data.get("frames") or (), data.get("loops") or {})


def _scope_key(frames: Any, loops: dict[str, int]) -> str:
    parts = [f"{fanout}[{index}]" for fanout, index in frames]
    parts += [f"{name}#{count}" for name, count in sorted(loops.items())]
    return "/".join(parts)


@dataclass
class Frame:
    """Branch `index` of the open fan-out `fanout`."""

    fanout: str
    index: int


@dataclass
class Token:
    node: str = ""
    frames: list[Frame] = field(default_factory=list)
    loops: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    item: Any = None

    @property
    def at_root(self) -> bool:
        return not self.frames

    def scope_key(self) -> str:
        """Names this token's place among repeated runs of one step (items, iterations)."""
        return _scope_key([(f.fanout, f.index) for f in self.frames], self.loops)

    def child(self, fanout: str, index: int, item: Any = _INHERIT) -> Token:
        """A token for one branch (or item) of a fan-out; parallel branches keep the item."""
        return Token(
            node="",
            frames=[*self.frames, Frame(fanout, index)],
            loops=dict(self.loops),
            decisions=dict(self.decisions),
            ops=[],
            item=self.item if item is _INHERIT else item,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"node": self.node}
        if self.frames:
            data["frames"] = [[f.fanout, f.index] for f in self.frames]
        if self.loops:
            data["loops"] = self.loops
        if self.decisions:
            data["decisions"] = self.decisions
        if self.ops:
            data["ops"] = self.ops
        if self.item is not None:
            data["item"] = self.item
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Token:
        return cls(
            node=data.get("node", ""),
            frames=[Frame(f, i) for f, i in data.get("frames", [])],
            loops=dict(data.get("loops", {})),
            decisions=dict(data.get("decisions", {})),
            ops=list(data.get("ops", [])),
            item=data.get("item"),
        )
