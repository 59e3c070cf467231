"""`Workflow`: the base class users subclass. Its metaclass compiles the class body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from durable.dsl import registry
from durable.dsl.builder import ClassCollector, collectors
from durable.dsl.compiler import Compiler
from durable.dsl.nodes import Branch, Definition, Node
from durable.exceptions import DefinitionError
from durable.time import as_seconds


def snake_case(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class _Namespace(dict[str, Any]):
    """The class-body namespace; remembers which collector belongs to this body."""

    collector: ClassCollector


class WorkflowMeta(type):
    @classmethod
    def __prepare__(mcs, name: str, bases: tuple[type, ...], **kwargs: Any) -> Mapping[str, object]:
        namespace = _Namespace()
        namespace.collector = ClassCollector()
        collectors().append(namespace.collector)
        return namespace

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kwargs: Any) -> WorkflowMeta:
        collector = getattr(namespace, "collector", None)
        stack = collectors()
        if collector is not None and collector in stack:
            stack.remove(collector)
        cls = super().__new__(mcs, name, bases, dict(namespace), **kwargs)
        if collector is None or namespace.get("abstract", False) or not bases:
            cls.abstract = bool(namespace.get("abstract", not bases))
            return cls
        cls.abstract = False
        cls._definition = _compile(cls, collector)
        problem = registry.register(cls._definition)
        if problem:
            raise DefinitionError(cls._definition.name, [problem])
        return cls


def _compile(cls: Any, collector: ClassCollector) -> Definition:
    name = cls.__dict__.get("name") or snake_case(cls.__name__)
    compiler = Compiler(cls)
    compiler.problems.extend(collector.problems)
    own = compiler.branch(collector.items, in_foreach=False)
    nodes = _merge_inherited(cls, own)
    if not nodes:
        compiler.problem("workflow", "declares no steps")
    timeout = as_seconds(cls.timeout)
    if timeout is not None and timeout <= 0:
        compiler.problem("timeout", f"must be positive, got {cls.timeout!r}")
    if not isinstance(cls.max_retries, int) or cls.max_retries < 1:
        compiler.problem("max_retries", f"must be an int >= 1, got {cls.max_retries!r}")
    if not isinstance(cls.queue, str) or not cls.queue:
        compiler.problem("queue", f"must be a non-empty string, got {cls.queue!r}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.:-]{0,199}", name):
        compiler.problem("name", f"{name!r} is not a valid workflow name")
    definition = Definition.build(
        name=name,
        workflow_class=cls,
        nodes=nodes,
        timeout=timeout,
        max_retries=cls.max_retries,
        queue=cls.queue,
        version=cls.version,
    )
    compiler.check_decisions(definition)
    if compiler.problems:
        raise DefinitionError(name, compiler.problems)
    return definition


def _merge_inherited(cls: Any, own: Branch) -> Branch:
    """A subclass keeps its parent's steps; a step of the same name overrides in place."""
    parent: Definition | None = next(
        (base._definition for base in cls.__mro__[1:] if "_definition" in base.__dict__), None
    )
    if parent is None:
        return own
    overrides = {node.name: node for node in own}
    inherited: list[Node] = [overrides.pop(node.name, node) for node in parent.nodes]
    return (*inherited, *[node for node in own if node.name in overrides])


class Workflow(metaclass=WorkflowMeta):
    """Subclass this and declare steps and blocks in the class body."""

    name: ClassVar[str]
    timeout: ClassVar[timedelta | float | None] = None
    max_retries: ClassVar[int] = 3
    queue: ClassVar[str] = "default"
    version: ClassVar[int | str] = 1
    abstract: ClassVar[bool] = True
    _definition: ClassVar[Definition]

    @classmethod
    def definition(cls) -> Definition:
        if cls.abstract:
            raise TypeError(f"{cls.__qualname__} is abstract and has no definition")
        return cls._definition
