"""Context changes recorded as operations, so concurrent branches merge without lost updates.

A step's writes are kept as a list of ops. At the root they are applied to the stored
context; inside a parallel branch or foreach item they travel with the branch and are
applied at the join, branch by branch in declaration order: two branches that `append`
to one list both land, two that `put` one key resolve to the later branch.
"""

from __future__ import annotations

from typing import Any


class ContextConflict(TypeError):
    """An op does not fit the value it applies to (append to a str, increment a list)."""


Op = list[Any]  # ["put", key, value] | ["delete", key] | ["append", key, value]
#                 | ["increment", key, amount] | ["init", key, value]


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value, faster than copy.deepcopy for this shape."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def apply_op(data: dict[str, Any], op: Op) -> None:
    kind, key = op[0], op[1]
    if kind == "put":
        data[key] = copy_json(op[2])
    elif kind == "delete":
        data.pop(key, None)
    elif kind == "init":
        data.setdefault(key, copy_json(op[2]))
    elif kind == "append":
        current = data.get(key)
        if current is None:
            current = data[key] = []
        if not isinstance(current, list):
            raise ContextConflict(
                f"cannot append to context key {key!r}: it holds a "
                f"{type(current).__name__}, not a list"
            )
        current.append(copy_json(op[2]))
    elif kind == "increment":
        current = data.get(key, 0)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise ContextConflict(
                f"cannot increment context key {key!r}: it holds a "
                f"{type(current).__name__}, not a number"
            )
        data[key] = current + op[2]
    else:
        raise ValueError(f"unknown context operation {kind!r}")


def apply_ops(data: dict[str, Any], ops: list[Op]) -> dict[str, Any]:
    """Apply `ops` to `data` in place and return it."""
    for op in ops:
        apply_op(data, op)
    return data
