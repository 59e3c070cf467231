"""The frozen definition of a workflow: what the class body declared, validated.

A definition is a tree. The root and every block branch is a `Sequence` of nodes that
run in order. Every node has a name unique within the workflow, which is how executions
record where they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from durable.dsl.limits import FlowControl
from durable.dsl.retry import Retry

ContextFn: TypeAlias = Callable[[Any], Any]
Branch: TypeAlias = "tuple[Node, ...]"


@dataclass(frozen=True)
class StepNode:
    """A method that runs on a worker. `kind="decision"` steps return a branch key."""

    name: str
    method: str
    kind: Literal["step", "decision"] = "step"
    retry: Retry | None = None
    timeout: float | None = None
    queue: str | None = None
    compensate: str | None = None
    is_async: bool = False
    takes_item: bool = False
    transactional: bool = False

    @property
    def children(self) -> tuple[Branch, ...]:
        return ()


@dataclass(frozen=True)
class OnDecisionNode:
    """Routes on the recorded result of an earlier decision step."""

    name: str
    decision: str
    branches: tuple[tuple[Any, Branch], ...]

    @property
    def children(self) -> tuple[Branch, ...]:
        return tuple(body for _, body in self.branches)


@dataclass(frozen=True)
class SwitchNode:
    """Routes on `on(ctx)`; `default` runs when no case matches."""

    name: str
    on: ContextFn
    cases: tuple[tuple[Any, Branch], ...]
    default: Branch | None

    @property
    def children(self) -> tuple[Branch, ...]:
        bodies = tuple(body for _, body in self.cases)
        return (*bodies, self.default) if self.default is not None else bodies


@dataclass(frozen=True)
class ParallelNode:
    """Each child is a branch; branches run concurrently from one context snapshot."""

    name: str
    branches: tuple[Branch, ...]

    @property
    def children(self) -> tuple[Branch, ...]:
        return self.branches


@dataclass(frozen=True)
class ForeachNode:
    """Runs `body` once per item of `items(ctx)`, at most `concurrency` at a time."""

    name: str
    items: ContextFn
    body: Branch
    concurrency: int | None = None

    @property
    def children(self) -> tuple[Branch, ...]:
        return (self.body,)


@dataclass(frozen=True)
class LoopNode:
    """Runs `body` while `while_(ctx)` holds, checked before each iteration."""

    name: str
    while_: ContextFn
    body: Branch
    max_iterations: int = 10_000

    @property
    def children(self) -> tuple[Branch, ...]:
        return (self.body,)


Node: TypeAlias = StepNode | OnDecisionNode | SwitchNode | ParallelNode | ForeachNode | LoopNode
BlockNode: TypeAlias = OnDecisionNode | SwitchNode | ParallelNode | ForeachNode | LoopNode


@dataclass(frozen=True)
class Location:
    """Where a node sits: index `index` of branch `branch` of block `owner` (None: root)."""

    owner: str | None
    branch: int
    index: int


def branch_key_matches(expected: Any, actual: Any) -> bool:
    """Equality that keeps `False`, `0` and `None` apart (Python says False == 0)."""
    return type(expected) is type(actual) and bool(expected == actual)


@dataclass(frozen=True)
class Definition:
    """A workflow class compiled to data. Built once, at class creation."""

    name: str
    workflow_class: type[Any]
    nodes: Branch
    timeout: float | None = None
    max_retries: int = 3
    queue: str = "default"
    version: int | str = 1
    # Old step/block name -> its name now, so executions in flight find their position.
    renamed_steps: dict[str, str] = field(default_factory=dict, compare=False)
    # Concurrency key, rate limit and debounce (durable.dsl.limits), or None.
    flow: FlowControl | None = None
    # A dataclass or pydantic model `ctx.input` is loaded as (durable.dsl.payloads), or None.
    input_type: type[Any] | None = field(default=None, compare=False)
    # Event names whose `durable.publish` starts a run of this workflow.
    triggers: tuple[str, ...] = ()
    locations: dict[str, Location] = field(default_factory=dict, compare=False)
    by_name: dict[str, Node] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, **kwargs: Any) -> Definition:
        definition = cls(**kwargs)
        for owner, branch, index, node in definition.walk():
            definition.locations[node.name] = Location(owner, branch, index)
            definition.by_name[node.name] = node
        return definition

    def walk(self) -> Iterator[tuple[str | None, int, int, Node]]:
        """Every node, depth first, with the block/branch/index that holds it."""

        def visit(owner: str | None, branch: int, seq: Branch) -> Iterator[Any]:
            for index, node in enumerate(seq):
                yield owner, branch, index, node
                for child_branch, child_seq in enumerate(node.children):
                    yield from visit(node.name, child_branch, child_seq)

        yield from visit(None, 0, self.nodes)

    def steps(self) -> list[StepNode]:
        return [node for node in self.by_name.values() if isinstance(node, StepNode)]

    def step(self, name: str) -> StepNode:
        node = self.by_name[name]
        assert isinstance(node, StepNode), f"{name} is not a step"
        return node

    def branch_of(self, owner: str | None, branch: int) -> Branch:
        if owner is None:
            return self.nodes
        return self.by_name[owner].children[branch]

    def queue_for(self, step: StepNode) -> str:
        return step.queue or self.queue

    def retry_for(self, step: StepNode) -> Retry:
        return step.retry or Retry(max_attempts=self.max_retries)

    def queues(self) -> set[str]:
        return {self.queue_for(step) for step in self.steps()}
