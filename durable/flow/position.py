"""Does an in-flight execution's position still exist in a (newly deployed) definition?

An execution's position is every queued task's token (its step, the fan-out frames and
loop iterations around it), its open fan-outs (their block, branch count and the parent
token waiting at the join) and its queued compensations. Code deployed while it is in
flight may have removed or renamed a step, or restructured a block around it; routing
such a token would run the wrong path (a step moved out of a parallel would "end" the
workflow at the end of its new branch). This module finds those positions, and applies
`Workflow.renamed_steps` to them. No ORM: the store feeds it rows as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from durable.dsl.nodes import Definition, ForeachNode, LoopNode, Node, ParallelNode, StepNode
from durable.flow.token import Token


@dataclass(frozen=True)
class Problem:
    """One part of a position the definition no longer has."""

    position: str  # the task's step (and scope), or the open fan-out
    missing: str  # the step or block that is missing or moved
    message: str


@dataclass(frozen=True)
class TaskPosition:
    kind: str  # step | compensate
    step: str
    token: Mapping[str, Any]


def task_problem(
    definition: Definition, task: TaskPosition, fanouts: Mapping[str, Any]
) -> Problem | None:
    """The first reason `task` (with the execution's open fan-outs) cannot run, or None."""
    if task.kind == "compensate":
        return _compensation_problem(definition, task)
    token = Token.from_json(dict(task.token))
    where = _describe(task.step, token.scope_key())
    return _token_problem(definition, token, fanouts, where, expect_step=True)


def execution_problems(
    definition: Definition, tasks: Iterable[TaskPosition], fanouts: Mapping[str, Any]
) -> list[Problem]:
    """Every problem of an execution's position: its tasks and its open fan-outs."""
    problems = [p for task in tasks if (p := task_problem(definition, task, fanouts)) is not None]
    for fanout_id, record in fanouts.items():
        parent = Token.from_json(record.get("parent", {}))
        where = f"fan-out {fanout_id!r}"
        problem = _fanout_problem(definition, fanout_id, record, where) or _token_problem(
            definition, parent, fanouts, where, expect_step=False
        )
        if problem is not None and problem not in problems:
            problems.append(problem)
    return problems


def _describe(step: str, scope: str) -> str:
    return f"{step} [{scope}]" if scope else step


def _compensation_problem(definition: Definition, task: TaskPosition) -> Problem | None:
    names = [task.step, *(entry[0] for entry in task.token.get("remaining", []))]
    for name in names:
        node = definition.by_name.get(name)
        if not isinstance(node, StepNode) or not node.compensate:
            return Problem(
                f"compensation of {task.step}",
                name,
                f"step {name!r}, whose compensation is queued, no longer exists "
                "(or has no compensate=)",
            )
    return None


def enclosing(definition: Definition, name: str) -> list[tuple[Node, int]]:
    """The blocks around node `name`, outermost first, each with the branch it sits in."""
    chain: list[tuple[Node, int]] = []
    location = definition.locations[name]
    while location.owner is not None:
        chain.append((definition.by_name[location.owner], location.branch))
        location = definition.locations[location.owner]
    return chain[::-1]


def _token_problem(
    definition: Definition,
    token: Token,
    fanouts: Mapping[str, Any],
    where: str,
    *,
    expect_step: bool,
) -> Problem | None:
    node = definition.by_name.get(token.node)
    if node is None:
        return Problem(where, token.node, f"step {token.node!r} no longer exists")
    if expect_step and not isinstance(node, StepNode):
        return Problem(where, token.node, f"{token.node!r} is no longer a step")
    chain = enclosing(definition, token.node)
    fan_blocks = [(b, i) for b, i in chain if isinstance(b, ParallelNode | ForeachNode)]
    frame_blocks = [str(fanouts.get(f.fanout, {}).get("block", "?")) for f in token.frames]
    if [b.name for b, _ in fan_blocks] != frame_blocks:
        return Problem(
            where,
            token.node,
            f"{token.node!r} was inside the fan-out(s) {frame_blocks} and now is inside "
            f"{[b.name for b, _ in fan_blocks]}",
        )
    for frame, (block, branch) in zip(token.frames, fan_blocks, strict=True):
        if isinstance(block, ParallelNode) and frame.index != branch:
            return Problem(
                where,
                token.node,
                f"{token.node!r} ran in branch {frame.index} of parallel {block.name!r} "
                f"and now is in branch {branch}",
            )
    if token.frames:
        # The fan-out this token returns to, and (recursively) the token waiting at its join.
        fanout_id = token.frames[-1].fanout
        record = fanouts.get(fanout_id)
        if record is None:
            return Problem(where, fanout_id, f"the open fan-out {fanout_id!r} is gone")
        problem = _fanout_problem(definition, fanout_id, record, where) or _token_problem(
            definition, Token.from_json(record.get("parent", {})), fanouts, where, expect_step=False
        )
        if problem is not None:
            return problem
    loops = sorted(b.name for b, _ in chain if isinstance(b, LoopNode))
    if loops != sorted(token.loops):
        return Problem(
            where,
            token.node,
            f"{token.node!r} was inside the loop(s) {sorted(token.loops)} and now is inside "
            f"{loops}",
        )
    return None


def _fanout_problem(
    definition: Definition, fanout_id: str, record: Mapping[str, Any], where: str
) -> Problem | None:
    block = definition.by_name.get(str(record.get("block")))
    if not isinstance(block, ParallelNode | ForeachNode):
        return Problem(
            where, str(record.get("block")), f"block {record.get('block')!r} no longer exists"
        )
    if isinstance(block, ParallelNode) and len(block.branches) != record.get("total"):
        return Problem(
            where,
            block.name,
            f"parallel {block.name!r} now has {len(block.branches)} branches; the run in "
            f"flight started {record.get('total')}",
        )
    return None


# -- renames (Workflow.renamed_steps) ----------------------------------------------------

# Fan-out ids and scope keys are names joined by these ("block@outer[0]/loop#2").
_SEPARATORS = re.compile(r"([@\[\]/#])")


def rename_in_id(renames: Mapping[str, str], value: str) -> str:
    """A fan-out id or scope key with the renamed step/block names replaced."""
    if not renames or not value:
        return value
    return "".join(renames.get(part, part) for part in _SEPARATORS.split(value))


def rename_token(renames: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, Any]:
    """A step token (as JSON) with renamed names replaced."""
    out = dict(data)
    out["node"] = renames.get(str(data.get("node", "")), data.get("node", ""))
    if "frames" in data:
        out["frames"] = [[rename_in_id(renames, f), i] for f, i in data["frames"]]
    for key in ("loops", "decisions"):
        if key in data:
            out[key] = {renames.get(k, k): v for k, v in data[key].items()}
    return out


def rename_compensation(renames: Mapping[str, str], data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["node"] = renames.get(str(data.get("node", "")), data.get("node", ""))
    out["scope_key"] = rename_in_id(renames, str(data.get("scope_key", "")))
    out["remaining"] = [
        [renames.get(step, step), rename_in_id(renames, scope), item]
        for step, scope, item in data.get("remaining", [])
    ]
    return out


def rename_fanouts(renames: Mapping[str, str], fanouts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fanout_id, record in fanouts.items():
        renamed = dict(record)
        renamed["block"] = renames.get(record.get("block", ""), record.get("block", ""))
        renamed["parent"] = rename_token(renames, record.get("parent", {}))
        out[rename_in_id(renames, fanout_id)] = renamed
    return out
