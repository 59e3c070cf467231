"""A definition's fingerprint: a hash of its structure (node names, kinds and nesting).

Executions record the fingerprint of the definition they started with. When the code's
definition still has that fingerprint, nothing an execution may point at has moved, and
the position checks of `durable.flow.position` are skipped. Step bodies, retries, queues
and timeouts are not part of it: changing them cannot strand an execution.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from durable.dsl.nodes import Branch, Definition, Node, StepNode

_cache: dict[int, tuple[Definition, str]] = {}


def fingerprint(definition: Definition) -> str:
    cached = _cache.get(id(definition))
    if cached is not None and cached[0] is definition:
        return cached[1]
    shape = json.dumps(_branch(definition.nodes), separators=(",", ":"), default=repr)
    value = hashlib.sha256(shape.encode()).hexdigest()[:32]
    _cache[id(definition)] = (definition, value)
    return value


def _branch(branch: Branch) -> list[Any]:
    return [_node(node) for node in branch]


def _node(node: Node) -> list[Any]:
    kind = node.kind if isinstance(node, StepNode) else type(node).__name__
    return [kind, node.name, [_branch(child) for child in node.children]]
