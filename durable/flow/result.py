"""`ctx.set_result(value)` travels with the step's context ops as one `["set_result", value]`
op, which the checkpoint takes out before the ops reach the context (see
`durable.store.checkpoint`): so only a step that completes sets the result."""

from __future__ import annotations

from typing import Any

from durable.flow.ops import Op

SET_RESULT = "set_result"


def result_op(value: Any) -> Op:
    return [SET_RESULT, value]


def take_result(ops: list[Op]) -> tuple[list[Op], Op | None]:
    """The context ops without result ops, and the last result op (None if there is none)."""
    rest = [op for op in ops if op[0] != SET_RESULT]
    if len(rest) == len(ops):
        return ops, None
    return rest, [op for op in ops if op[0] == SET_RESULT][-1]
