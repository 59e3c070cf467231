"""Decorators and `with` blocks that record a workflow's structure while its class body runs.

Decorators only mark methods (`__durable_step__`); blocks only record what was declared
inside them. Nothing is validated here: `workflow.py` compiles the record into a frozen
`Definition` at class creation and reports every problem at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar, overload

from durable.dsl.retry import Retry

F = TypeVar("F", bound=Callable[..., Any])

BlockKind = Literal[
    "on_decision", "when_result", "parallel", "foreach", "loop", "switch", "case_match", "default"
]


@dataclass
class StepSpec:
    """What `@step` / `@decision` recorded about a method."""

    function: Callable[..., Any]
    kind: Literal["step", "decision"]
    name: str
    retry: Retry | None = None
    timeout: float | timedelta | None = None
    queue: str | None = None
    compensate: str | None = None
    transactional: bool = False


@dataclass
class BlockSpec:
    """A `with` block and the items declared in it, in order."""

    kind: BlockKind
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    items: list[StepSpec | BlockSpec] = field(default_factory=list)


@dataclass
class ClassCollector:
    """Collects the items of one class body, including problems found while collecting."""

    items: list[StepSpec | BlockSpec] = field(default_factory=list)
    open_blocks: list[BlockSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, item: StepSpec | BlockSpec) -> None:
        (self.open_blocks[-1].items if self.open_blocks else self.items).append(item)


_state = threading.local()


def collectors() -> list[ClassCollector]:
    stack: list[ClassCollector] | None = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def _current() -> ClassCollector | None:
    stack = collectors()
    return stack[-1] if stack else None


def _mark(spec: StepSpec) -> Callable[..., Any]:
    spec.function.__durable_step__ = spec  # type: ignore[attr-defined]
    collector = _current()
    if collector is not None:
        collector.add(spec)
    return spec.function


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    queue: str | None = None,
    compensate: str | None = None,
    transactional: bool = False,
) -> Callable[[F], F]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    queue: str | None = None,
    compensate: str | None = None,
    transactional: bool = False,
) -> Any:
    """Mark a method as a step. Works bare (`@step`) and with options (`@step(...)`)."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        return _mark(
            StepSpec(
                function,
                "step",
                name or function.__name__,
                retry,
                timeout,
                queue,
                compensate,
                transactional,
            )
        )

    return _mark_or_options("step", fn, mark)


@overload
def decision(fn: F, /) -> F: ...
@overload
def decision(
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    queue: str | None = None,
) -> Callable[[F], F]: ...
def decision(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    queue: str | None = None,
) -> Any:
    """Mark a method as a decision: a step whose return value picks an `on_decision` branch."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        return _mark(
            StepSpec(function, "decision", name or function.__name__, retry, timeout, queue)
        )

    return _mark_or_options("decision", fn, mark)


def _mark_or_options(
    decorator: str, fn: Any, mark: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Any:
    if fn is None:
        return mark
    if not callable(fn):
        raise TypeError(
            f"@{decorator}({fn!r}): options are keyword-only, e.g. @{decorator}(name={fn!r})"
        )
    return mark(fn)


@contextmanager
def _block(spec: BlockSpec, parent_kinds: tuple[BlockKind, ...] = ()) -> Iterator[None]:
    collector = _current()
    if collector is None:
        raise RuntimeError(f"{spec.kind}() can only be used inside a Workflow class body")
    parent = collector.open_blocks[-1] if collector.open_blocks else None
    if parent_kinds and (parent is None or parent.kind not in parent_kinds):
        where = f"inside {_describe(parent)}" if parent else "at the top level"
        collector.problems.append(
            f"{_describe(spec)} must be directly inside {' or '.join(parent_kinds)}, not {where}"
        )
    collector.add(spec)
    collector.open_blocks.append(spec)
    try:
        yield
    finally:
        collector.open_blocks.pop()


def _describe(block: BlockSpec) -> str:
    if block.name is not None:
        return f"{block.kind} {block.name!r}"
    return f"{block.kind}({repr(block.options['value']) if 'value' in block.options else ''})"


def _step_name(target: Callable[..., Any] | str) -> str:
    if isinstance(target, str):
        return target
    spec: StepSpec | None = getattr(target, "__durable_step__", None)
    return spec.name if spec else getattr(target, "__name__", repr(target))


def on_decision(decision_step: Callable[..., Any] | str) -> Any:
    """Branch on the result of a decision declared earlier; pair with `when_result`."""
    name = _step_name(decision_step)
    spec = getattr(decision_step, "__durable_step__", None)
    options: dict[str, Any] = {"decision": name}
    if not isinstance(decision_step, str) and (spec is None or spec.kind != "decision"):
        options["not_a_decision"] = True
    return _block(BlockSpec("on_decision", f"{name}:branches", options))


def when_result(value: Any) -> Any:
    """The branch of the enclosing `on_decision` taken when the decision returned `value`."""
    return _block(BlockSpec("when_result", None, {"value": value}), ("on_decision",))


def parallel(name: str) -> Any:
    """Each step or block declared inside is a branch; all run concurrently, then join."""
    return _block(BlockSpec("parallel", name))


def foreach(name: str, items: Callable[[Any], Any], concurrency: int | None = None) -> Any:
    """Run the body once per item of `items(ctx)`; steps inside take `(self, ctx, item)`."""
    return _block(BlockSpec("foreach", name, {"items": items, "concurrency": concurrency}))


def loop(name: str, while_: Callable[[Any], Any], max_iterations: int = 10_000) -> Any:
    """Run the body while `while_(ctx)` is true, checked before every iteration."""
    return _block(BlockSpec("loop", name, {"while_": while_, "max_iterations": max_iterations}))


def switch(name: str, on: Callable[[Any], Any]) -> Any:
    """Run the `case_match` whose value equals `on(ctx)`, else `default`."""
    return _block(BlockSpec("switch", name, {"on": on}))


def case_match(value: Any) -> Any:
    return _block(BlockSpec("case_match", None, {"value": value}), ("switch",))


def default() -> Any:
    return _block(BlockSpec("default", None, {}), ("switch",))
