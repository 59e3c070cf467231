"""Moves tokens through a definition until each reaches a step to run, a join, or the end.

Routing blocks (on_decision, switch, loop, parallel, foreach) are evaluated here, in the
transaction that records the previous step, so only steps become queued work. The router
works on `FlowState` (the execution's root context and its open fan-outs) and reports
what to enqueue; the store persists the result.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from durable.dsl.nodes import (
    Definition,
    ForeachNode,
    LoopNode,
    OnDecisionNode,
    ParallelNode,
    StepNode,
    SwitchNode,
    branch_key_matches,
)
from durable.dsl.payloads import typed_input
from durable.flow.branches import Branches, MemoryBranches
from durable.flow.context import Context
from durable.flow.ops import ContextConflict, Op, apply_ops, copy_json
from durable.flow.token import Token
from durable.serialization import NotJSONError, normalize, safe_repr


class FlowError(Exception):
    """The workflow cannot go on: a routing function failed or a loop hit its guard."""


@dataclass
class FlowState:
    context: dict[str, Any]
    fanouts: dict[str, dict[str, Any]]
    workflow_id: str = ""
    input: Any = None
    branches: Branches = field(default_factory=MemoryBranches)
    # Whether routing changed the root context (a step's ops at the root, a join).
    context_changed: bool = False


@dataclass
class Advance:
    """What one routing pass decided."""

    ready: list[Token] = field(default_factory=list)
    completed: bool = False


class Router:
    def __init__(self, definition: Definition, state: FlowState) -> None:
        self.definition = definition
        self.state = state
        self.advance = Advance()
        self._starting: set[str] = set()  # fan-outs whose `_start_branches` loop is running

    # -- entry points --------------------------------------------------------------------

    def start(self) -> Advance:
        self._guarded(lambda: self._walk(None, 0, 0, Token()))
        return self.advance

    def restart_at(self, name: str, decisions: dict[str, Any]) -> Advance:
        """Walk from root-level node `name` with the decision results recorded before it
        (`durable.retry(from_step=...)`)."""
        index = self.definition.locations[name].index
        token = Token(decisions=dict(decisions))
        self._guarded(lambda: self._walk(None, 0, index, token))
        return self.advance

    def step_done(self, token: Token, ops: list[Op], output: Any) -> Advance:
        """Record a finished step's writes (and decision result), then move its token on."""
        step = self.definition.step(token.node)
        if step.kind == "decision":
            token.decisions[step.name] = output
        self._record_ops(token, ops)
        self._guarded(lambda: self._continue_after(token.node, token))
        return self.advance

    # -- walking -------------------------------------------------------------------------

    def _guarded(self, action: Any) -> None:
        try:
            action()
        except RecursionError:
            raise FlowError(
                "routing did not reach a step (a loop whose body runs no step?)"
            ) from None
        except ContextConflict as exc:
            raise FlowError(
                f"the branches of a parallel/foreach made conflicting changes: {exc}"
            ) from exc

    def _continue_after(self, name: str, token: Token) -> None:
        loc = self.definition.locations[name]
        self._walk(loc.owner, loc.branch, loc.index + 1, token)

    def _walk(self, owner: str | None, branch: int, index: int, token: Token) -> None:
        while True:
            seq = self.definition.branch_of(owner, branch)
            if index >= len(seq):
                self._end_of_branch(owner, token)
                return
            node = seq[index]
            if isinstance(node, StepNode):
                token.node = node.name
                self.advance.ready.append(token)
                return
            if isinstance(node, OnDecisionNode | SwitchNode):
                chosen = self._choose_branch(node, token)
                if chosen is None:
                    index += 1
                    continue
                owner, branch, index = node.name, chosen, 0
                continue
            if isinstance(node, LoopNode):
                self._loop_check(node, token)
                return
            if isinstance(node, ParallelNode):
                self._fan_out(node, token, [None] * len(node.branches), limit=None)
                return
            items = self._items(node, token)
            if not items:
                index += 1
                continue
            self._fan_out(node, token, items, limit=node.concurrency)
            return

    def _choose_branch(self, node: OnDecisionNode | SwitchNode, token: Token) -> int | None:
        if isinstance(node, OnDecisionNode):
            result = token.decisions.get(node.decision)
            for i, (key, _) in enumerate(node.branches):
                if branch_key_matches(key, result):
                    return i
            return None
        value = self._call(node.name, "on", node.on, token)
        # As stored, so a StrEnum matches its string; a non-JSON value matches no case.
        with contextlib.suppress(NotJSONError):
            value = normalize(value, f"on= of {node.name!r}")
        for i, (key, _) in enumerate(node.cases):
            if branch_key_matches(key, value):
                return i
        return len(node.cases) if node.default is not None else None

    def _end_of_branch(self, owner: str | None, token: Token) -> None:
        if owner is None:
            self.advance.completed = True
            return
        node = self.definition.by_name[owner]
        if isinstance(node, LoopNode):
            self._loop_check(node, token)
        elif isinstance(node, ParallelNode | ForeachNode):
            self._branch_done(token)
        else:
            self._continue_after(owner, token)

    def _loop_check(self, node: LoopNode, token: Token) -> None:
        count = token.loops.get(node.name, 0)
        if self._call(node.name, "while_", node.while_, token):
            if count >= node.max_iterations:
                raise FlowError(
                    f"loop {node.name!r} reached max_iterations={node.max_iterations} "
                    "with its condition still true"
                )
            token.loops[node.name] = count + 1
            self._walk(node.name, 0, 0, token)
            return
        token.loops.pop(node.name, None)
        self._continue_after(node.name, token)

    # -- fan-out and join ----------------------------------------------------------------

    def _fan_out(
        self, node: ParallelNode | ForeachNode, token: Token, items: list[Any], limit: int | None
    ) -> None:
        """Open a fan-out: a small header in `fanouts`; the items beyond the first window
        are parked (durable.flow.branches), and each branch's ops recorded as it ends."""
        scope = token.scope_key()
        fanout_id = f"{node.name}@{scope}" if scope else node.name
        token.node = node.name
        total = len(items)
        if isinstance(node, ForeachNode):
            limit = min(limit or self.state.branches.window, total)
        else:
            limit = total
        record: dict[str, Any] = {
            "key": secrets.randbits(62),
            "block": node.name,
            "base": copy_json(self.view(token)),
            "parent": token.to_json(),
            "total": total,
            "started": 0,
            "done": 0,
            "limit": limit,
        }
        if isinstance(node, ForeachNode) and total > limit:
            self.state.branches.park(record["key"], limit, items[limit:])
        self.state.fanouts[fanout_id] = record
        self._start_branches(fanout_id, record, items[:limit])

    def _start_branches(
        self, fanout_id: str, record: dict[str, Any], at_hand: list[Any] | None = None
    ) -> None:
        """Start branches while the fan-out's limit allows; `at_hand`: the first items (a
        foreach just opened), the others are read back from where they were parked."""
        node = self.definition.by_name[record["block"]]
        parent = Token.from_json(record["parent"])
        self._starting.add(fanout_id)
        try:
            while (
                fanout_id in self.state.fanouts
                and record["started"] < record["total"]
                and record["started"] - record["done"] < record["limit"]
            ):
                index = record["started"]
                record["started"] += 1
                if isinstance(node, ForeachNode):
                    if at_hand is not None and index < len(at_hand):
                        item = at_hand[index]
                    else:
                        item = self.state.branches.item(record["key"], index)
                    self._walk(node.name, 0, 0, parent.child(fanout_id, index, item))
                else:
                    self._walk(node.name, index, 0, parent.child(fanout_id, index))
        finally:
            self._starting.discard(fanout_id)

    def _branch_done(self, token: Token) -> None:
        frame = token.frames[-1]
        record = self.state.fanouts[frame.fanout]
        branches = self.state.branches
        branches.finish(record["key"], frame.index, token.ops)
        record["done"] += 1
        if record["done"] < record["total"]:
            # A branch that ran no step finishes inside `_start_branches`; its loop goes on
            # (recursing instead would overflow the stack on a long list of such items).
            if frame.fanout not in self._starting:
                self._start_branches(frame.fanout, record)
            return
        del self.state.fanouts[frame.fanout]
        merged = [op for ops in branches.results(record["key"], record["total"]) for op in ops]
        branches.drop(record["key"])
        parent = Token.from_json(record["parent"])
        self._record_ops(parent, merged)
        self._continue_after(record["block"], parent)

    # -- context -------------------------------------------------------------------------

    def view(self, token: Token) -> dict[str, Any]:
        """The context as `token` sees it: the root context, or its fan-out's base + its ops."""
        if token.at_root:
            return self.state.context
        base = self.state.fanouts[token.frames[-1].fanout]["base"]
        return apply_ops(copy_json(base), token.ops)

    def _record_ops(self, token: Token, ops: list[Op]) -> None:
        if token.at_root:
            if ops:
                self.state.context_changed = True
            apply_ops(self.state.context, ops)
        else:
            token.ops.extend(ops)

    def _call(self, block: str, option: str, fn: Any, token: Token) -> Any:
        try:
            ctx = Context(
                self.view(token),
                input=typed_input(self.definition.input_type, self.state.input),
                workflow_id=self.state.workflow_id,
                current_step=block,
                read_only=True,
            )
            return fn(ctx)
        except Exception as exc:
            raise FlowError(
                f"{option}= of {block!r} raised {type(exc).__name__}: {safe_repr(exc)}"
            ) from exc

    def _items(self, node: ForeachNode, token: Token) -> list[Any]:
        items = self._call(node.name, "items", node.items, token)
        if not isinstance(items, list | tuple):
            raise FlowError(
                f"items= of foreach {node.name!r} returned a "
                f"{type(items).__name__}; it must return a list"
            )
        try:
            return list(normalize(list(items), f"items of foreach {node.name!r}"))
        except NotJSONError as exc:
            raise FlowError(str(exc)) from exc
