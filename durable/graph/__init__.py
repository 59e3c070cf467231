"""A workflow as a graph: `generate` it from the definition, add an execution's state with
`with_execution`, export it with `to_dot`, `to_mermaid`, `to_cytoscape` or `to_svg`.

Everything but `with_execution` is pure and works before Django's app registry is ready.
"""

from __future__ import annotations

from typing import Any

from durable.graph.build import generate
from durable.graph.export import to_cytoscape, to_dot, to_mermaid
from durable.graph.svg import to_svg

__all__ = ["generate", "to_cytoscape", "to_dot", "to_mermaid", "to_svg", "with_execution"]


def with_execution(workflow: Any, workflow_id: str) -> dict[str, Any]:
    """The graph of `workflow` with the state of execution `workflow_id` on every node."""
    # Imported here: the ORM models need Django's app registry, the rest of the graph not.
    from durable.graph.execution import with_execution as build

    return build(workflow, workflow_id)
