"""`Workflow`: the base class users subclass. Its metaclass compiles the class body."""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

from durable.dsl import cron, limits, payloads, registry
from durable.dsl.builder import ClassCollector, collectors
from durable.dsl.compiler import Compiler
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
from durable.exceptions import DefinitionError

# The longest event name a workflow can be triggered by (as event names of waits).
MAX_TRIGGER_LENGTH = 200


def snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class _Namespace(dict[str, Any]):
    """The class-body namespace; remembers which collector belongs to this body."""

    collector: ClassCollector


class WorkflowMeta(type):
    abstract: bool
    _nodes: Branch
    _definition: Definition

    @classmethod
    def __prepare__(
        mcs, name: str, bases: tuple[type, ...], /, **kwargs: Any
    ) -> MutableMapping[str, object]:
        namespace = _Namespace()
        namespace.collector = ClassCollector()
        collectors().append(namespace.collector)
        return namespace

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> WorkflowMeta:
        collector = getattr(namespace, "collector", None)
        stack = collectors()
        if collector is not None and collector in stack:
            stack.remove(collector)
        cls = super().__new__(mcs, name, bases, dict(namespace), **kwargs)
        cls.abstract = bool(namespace.get("abstract", not bases))
        if not bases:
            return cls
        compiler = Compiler(cls)
        if collector is not None:
            compiler.problems.extend(collector.problems)
        own = compiler.branch(collector.items if collector is not None else [], in_foreach=False)
        # Abstract classes keep their nodes too, so concrete subclasses inherit their steps.
        cls._nodes = _merge_inherited(cls, own, compiler)
        display_name = namespace.get("name") or snake_case(name)
        if cls.abstract:
            if compiler.problems:
                raise DefinitionError(display_name, compiler.problems)
            return cls
        cls._definition = _compile(cls, compiler, cls._nodes)
        problem = registry.register(cls._definition)
        if problem:
            raise DefinitionError(cls._definition.name, [problem])
        return cls


def _compile(cls: Any, compiler: Compiler, nodes: Branch) -> Definition:
    name = cls.__dict__.get("name") or snake_case(cls.__name__)
    if not nodes:
        compiler.problem("workflow", "declares no steps")
    timeout = compiler.duration("workflow", "timeout", cls.timeout)
    max_retries = cls.max_retries
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 1:
        compiler.problem("workflow", f"max_retries must be an int >= 1, got {max_retries!r}")
    if not isinstance(cls.queue, str) or not cls.queue:
        compiler.problem("workflow", f"queue must be a non-empty string, got {cls.queue!r}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.:-]{0,199}", name):
        compiler.problem("workflow", f"name {name!r} is not a valid workflow name")
    input_type = cls.input_type
    problem = payloads.input_type_problem(input_type)
    if problem:
        compiler.problem("workflow", problem)
        input_type = None
    flow, flow_problems = limits.compile_flow_control(cls)
    for message in flow_problems:
        compiler.problem("flow control", message)
    definition = Definition.build(
        name=name,
        workflow_class=cls,
        nodes=nodes,
        timeout=timeout,
        max_retries=max_retries,
        queue=cls.queue,
        version=cls.version,
        renamed_steps=_renames(cls, compiler),
        flow=flow,
        input_type=input_type,
        triggers=_triggers(cls, flow, compiler),
    )
    compiler.check_decisions(definition)
    for old, new in definition.renamed_steps.items():
        if old in definition.by_name:
            compiler.problem("renamed_steps", f"{old!r} is renamed but still exists")
        if new not in definition.by_name:
            compiler.problem(
                "renamed_steps", f"{old!r} is renamed to {new!r}, which does not exist"
            )
    for message in cron.class_problems(cls):
        compiler.problem("cron", message)
    if compiler.problems:
        raise DefinitionError(name, compiler.problems)
    return definition


def _triggers(cls: Any, flow: Any, compiler: Compiler) -> tuple[str, ...]:
    triggers = cls.triggers
    if isinstance(triggers, str) or not isinstance(triggers, list | tuple):
        compiler.problem("triggers", f"must be a list of event names, got {triggers!r}")
        return ()
    names: list[str] = []
    for name in triggers:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_TRIGGER_LENGTH:
            compiler.problem(
                "triggers",
                f"an event name must be a string of 1 to {MAX_TRIGGER_LENGTH} characters, "
                f"got {name!r}",
            )
        elif name in names:
            compiler.problem("triggers", f"{name!r} is listed twice")
        else:
            names.append(name)
    if names and flow is not None and flow.debounce is not None:
        # A debounced start joins a burst by its key; a published start is one per publish.
        compiler.problem("triggers", "a debounced workflow cannot have triggers")
    return tuple(names)


def _renames(cls: Any, compiler: Compiler) -> dict[str, str]:
    renames = cls.renamed_steps
    if not isinstance(renames, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in renames.items()
    ):
        compiler.problem("renamed_steps", f"must be a dict of str to str, got {renames!r}")
        return {}
    return dict(renames)


def _merge_inherited(cls: Any, own: Branch, compiler: Compiler) -> Branch:
    """A subclass keeps its parent's nodes; a node of the same name overrides in place.

    Only the subclass's top-level nodes override (at any depth of the parent's tree); the
    others are appended. Names must stay unique in the merged tree.
    """
    parent: Branch | None = next(
        (base._nodes for base in cls.__mro__[1:] if "_nodes" in base.__dict__), None
    )
    if parent is None:
        return own
    overrides = {node.name: node for node in own}
    inherited = _override(parent, overrides)
    merged = (*inherited, *[node for node in own if node.name in overrides])
    seen: set[str] = set()
    for node in _walk(merged):
        if node.name in seen:
            compiler.problem(
                f"{_kind(node)} {node.name!r}",
                "the name is also used by an inherited step or block; names are unique per "
                "workflow (declare the override at the top level of the class body)",
            )
        seen.add(node.name)
    return merged


def _override(branch: Branch, overrides: dict[str, Node]) -> Branch:
    """`branch` with every node named in `overrides` replaced (and popped from it)."""
    out: list[Node] = []
    for node in branch:
        if node.name in overrides:
            out.append(overrides.pop(node.name))
        elif isinstance(node, ParallelNode):
            out.append(
                replace(node, branches=tuple(_override(b, overrides) for b in node.branches))
            )
        elif isinstance(node, ForeachNode | LoopNode):
            out.append(replace(node, body=_override(node.body, overrides)))
        elif isinstance(node, OnDecisionNode):
            keyed = tuple((key, _override(body, overrides)) for key, body in node.branches)
            out.append(replace(node, branches=keyed))
        elif isinstance(node, SwitchNode):
            cases = tuple((key, _override(body, overrides)) for key, body in node.cases)
            default = None if node.default is None else _override(node.default, overrides)
            out.append(replace(node, cases=cases, default=default))
        else:
            out.append(node)
    return tuple(out)


def _walk(branch: Branch) -> Iterator[Node]:
    for node in branch:
        yield node
        for child in node.children:
            yield from _walk(child)


def _kind(node: Node) -> str:
    if isinstance(node, StepNode):
        return node.kind
    return type(node).__name__.removesuffix("Node").lower()


class Workflow(metaclass=WorkflowMeta):
    """Subclass this and declare steps and blocks in the class body."""

    name: ClassVar[str]
    timeout: ClassVar[timedelta | float | None] = None
    max_retries: ClassVar[int] = 3
    queue: ClassVar[str] = "default"
    version: ClassVar[int | str] = 1
    # A dataclass or pydantic model: `durable.start` validates the input against it and
    # `ctx.input` is an instance of it.
    input_type: ClassVar[type[Any] | None] = None
    # A schedule (see durable.scheduler): `cron` is a cron expression; the others are optional.
    cron: ClassVar[str | None] = None
    cron_timezone: ClassVar[str | None] = None
    cron_queue: ClassVar[str | None] = None
    cron_input: ClassVar[dict[str, Any] | None] = None
    cron_catch_up: ClassVar[str] = "skip"
    cron_overlap: ClassVar[str] = "allow"  # or "skip", "cancel_previous"
    # Event names: each `durable.publish(name, payload)` starts one run with the payload.
    triggers: ClassVar[list[str] | tuple[str, ...]] = ()
    # Old step/block name -> new name, for executions in flight across a rename.
    renamed_steps: ClassVar[dict[str, str]] = {}
    # Flow control (see durable.dsl.limits); keys are input key names or callables.
    concurrency_key: ClassVar[limits.KeySpec | None] = None
    concurrency_limit: ClassVar[int | None] = None
    rate_limit: ClassVar[str | None] = None
    rate_limit_key: ClassVar[limits.KeySpec | None] = None
    debounce: ClassVar[timedelta | float | None] = None
    debounce_key: ClassVar[limits.KeySpec | None] = None
    abstract: ClassVar[bool] = True
    _definition: ClassVar[Definition]
    _nodes: ClassVar[Branch]

    @classmethod
    def definition(cls) -> Definition:
        if cls.abstract:
            raise TypeError(f"{cls.__qualname__} is abstract and has no definition")
        return cls._definition
