"""Turns what a class body declared into a validated `Definition`, collecting every problem."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from durable.dsl.builder import BlockSpec, StepSpec
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
    branch_key_matches,
)
from durable.dsl.retry import Retry
from durable.serialization import NotJSONError, normalize
from durable.time import as_seconds

SCALARS = (str, int, float, bool, type(None))


class Compiler:
    def __init__(self, workflow_class: type[Any]) -> None:
        self.cls = workflow_class
        self.problems: list[str] = []
        self.names: set[str] = set()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def claim_name(self, where: str, name: object) -> None:
        if not isinstance(name, str) or not name:
            self.problem(where, "the name must be a non-empty string")
            return
        if name in self.names:
            self.problem(where, "the name is used twice; names are unique per workflow")
        self.names.add(name)

    def duration(self, where: str, option: str, value: object) -> float | None:
        """`value` in seconds, reporting anything that is not a positive duration."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
            self.problem(
                where, f"{option} must be a timedelta or a number of seconds, got {value!r}"
            )
            return None
        seconds = as_seconds(value)
        if seconds is None or not seconds > 0 or math.isinf(seconds):
            self.problem(where, f"{option} must be positive, got {value!r}")
            return None
        return seconds

    # -- items -> nodes -------------------------------------------------------------------

    def branch(self, items: list[StepSpec | BlockSpec], in_foreach: bool) -> Branch:
        nodes: list[Node] = []
        for item in items:
            node = self.node(item, in_foreach)
            if node is not None:
                nodes.append(node)
        return tuple(nodes)

    def node(self, item: StepSpec | BlockSpec, in_foreach: bool) -> Node | None:
        if isinstance(item, StepSpec):
            return self.step(item, in_foreach)
        if item.kind in ("when_result", "case_match", "default"):
            return None  # reported by the builder: only valid directly inside their parent
        where = f"{item.kind} {item.name!r}"
        self.claim_name(where, item.name)
        assert item.name is not None
        options = item.options
        if item.kind == "on_decision":
            return self.on_decision(item, in_foreach)
        if item.kind == "switch":
            return self.switch(item, in_foreach)
        if item.kind == "parallel":
            branches = tuple(self.branch([child], in_foreach) for child in item.items)
            if not branches:
                self.problem(where, "has no branches")
            return ParallelNode(item.name, branches)
        body = self.branch(item.items, in_foreach or item.kind == "foreach")
        if not body:
            self.problem(where, "has an empty body")
        if item.kind == "foreach":
            self.check_callable(where, "items", options["items"])
            concurrency = options["concurrency"]
            if concurrency is not None and (
                not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
            ):
                self.problem(where, f"concurrency must be an int >= 1, got {concurrency!r}")
            return ForeachNode(item.name, options["items"], body, concurrency)
        self.check_callable(where, "while_", options["while_"])
        limit = options["max_iterations"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            self.problem(where, f"max_iterations must be an int >= 1, got {limit!r}")
        return LoopNode(item.name, options["while_"], body, limit)

    def step(self, spec: StepSpec, in_foreach: bool) -> StepNode:
        where = f"{spec.kind} {spec.name!r}"
        self.claim_name(where, spec.name)
        self.check_method(where, spec)
        takes_item = self.check_signature(where, spec.function, in_foreach)
        if spec.retry is not None:
            if not isinstance(spec.retry, Retry):
                self.problem(where, f"retry must be a Retry(...), got {spec.retry!r}")
            else:
                for message in spec.retry.problems():
                    self.problem(where, f"retry: {message}")
        timeout = self.duration(where, "timeout", spec.timeout)
        if spec.queue is not None and (not isinstance(spec.queue, str) or not spec.queue):
            self.problem(where, f"queue must be a non-empty string, got {spec.queue!r}")
        if spec.compensate is not None:
            target = getattr(self.cls, spec.compensate, None)
            if not callable(target):
                self.problem(where, f"compensate={spec.compensate!r} names no method of the class")
            elif hasattr(target, "__durable_step__"):
                self.problem(where, f"compensate={spec.compensate!r} is a step; use a plain method")
        if spec.transactional and inspect.iscoroutinefunction(spec.function):
            self.problem(
                where,
                "transactional=True needs a sync step: an async step cannot "
                "share the checkpoint's database transaction",
            )
        return StepNode(
            name=spec.name,
            method=spec.function.__name__,
            kind=spec.kind,
            retry=spec.retry if isinstance(spec.retry, Retry) else None,
            timeout=timeout,
            queue=spec.queue,
            compensate=spec.compensate,
            is_async=inspect.iscoroutinefunction(spec.function),
            takes_item=takes_item,
            transactional=spec.transactional,
        )

    def on_decision(self, item: BlockSpec, in_foreach: bool) -> OnDecisionNode:
        assert item.name is not None
        where = f"on_decision({item.options['decision']!r})"
        if item.options.get("not_a_decision"):
            self.problem(where, f"{item.options['decision']!r} is not a @decision")
        branches = self.keyed_branches(where, item, "when_result", in_foreach)
        return OnDecisionNode(item.name, item.options["decision"], branches)

    def switch(self, item: BlockSpec, in_foreach: bool) -> SwitchNode:
        assert item.name is not None
        where = f"switch {item.name!r}"
        self.check_callable(where, "on", item.options["on"])
        cases = self.keyed_branches(where, item, "case_match", in_foreach)
        defaults = [
            child
            for child in item.items
            if isinstance(child, BlockSpec) and child.kind == "default"
        ]
        if len(defaults) > 1:
            self.problem(where, "has more than one default()")
        default = self.branch(defaults[0].items, in_foreach) if defaults else None
        if not cases and default is None:
            self.problem(where, "has no case_match() or default() branches")
        return SwitchNode(item.name, item.options["on"], cases, default)

    def keyed_branches(
        self, where: str, item: BlockSpec, kind: str, in_foreach: bool
    ) -> tuple[tuple[Any, Branch], ...]:
        branches: list[tuple[Any, Branch]] = []
        for child in item.items:
            if isinstance(child, StepSpec):
                self.problem(where, f"step {child.name!r} must be inside a {kind}() branch")
                continue
            if child.kind == "default" and kind == "case_match":
                continue
            if child.kind != kind:
                self.problem(where, f"only {kind}() blocks may appear inside, found {child.kind}")
                continue
            value = child.options["value"]
            if not isinstance(value, SCALARS):
                self.problem(
                    where, f"{kind}({value!r}): values must be str, int, float, bool or None"
                )
            else:
                try:
                    # As stored: a StrEnum member matches the plain string a decision returns.
                    value = normalize(value, f"{kind}({value!r})")
                except NotJSONError as exc:
                    self.problem(where, str(exc))
                if any(branch_key_matches(key, value) for key, _ in branches):
                    self.problem(where, f"{kind}({value!r}) appears twice")
            branches.append((value, self.branch(child.items, in_foreach)))
        if not branches and kind == "when_result":
            self.problem(where, "has no when_result() branches")
        return tuple(branches)

    # -- checks ---------------------------------------------------------------------------

    def check_callable(self, where: str, option: str, value: object) -> None:
        if not callable(value):
            self.problem(where, f"{option}= must be a callable taking ctx, got {value!r}")

    def check_method(self, where: str, spec: StepSpec) -> None:
        """The engine calls a step by its method name, which must lead back to this step."""
        method = spec.function.__name__
        attribute = self.cls.__dict__.get(method)
        if attribute is None:
            self.problem(where, f"the class has no attribute {method!r} holding this step")
        # A decorator applied over @step with functools.wraps carries the same spec along.
        elif (
            attribute is not spec.function
            and getattr(attribute, "__durable_step__", None) is not spec
        ):
            self.problem(
                where,
                f"its method {method!r} is redefined later in the class body; "
                "give each step its own method name",
            )

    def check_signature(self, where: str, function: Callable[..., Any], in_foreach: bool) -> bool:
        """Steps take (self, ctx), or (self, ctx, item) inside a foreach. Returns takes_item."""
        try:
            params = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            return False
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        if len(positional) < 2:
            self.problem(where, "must accept (self, ctx)")
            return False
        if len(required) > 3 or (len(required) == 3 and not in_foreach):
            expected = "(self, ctx, item)" if in_foreach else "(self, ctx)"
            self.problem(where, f"takes too many arguments; expected {expected}")
        return in_foreach and len(positional) >= 3

    def check_decisions(self, definition: Definition) -> None:
        """on_decision must follow its decision in the same or an enclosing branch."""
        for node in definition.by_name.values():
            if not isinstance(node, OnDecisionNode):
                continue
            target = definition.by_name.get(node.decision)
            where = f"on_decision({node.decision!r})"
            if target is None:
                self.problem(where, f"no decision named {node.decision!r} in this workflow")
            elif not isinstance(target, StepNode) or target.kind != "decision":
                if not any(p.startswith(where) for p in self.problems):
                    self.problem(where, f"{node.decision!r} is not a @decision")
            elif not self.precedes(definition, node.decision, node.name):
                self.problem(
                    where,
                    f"must come after decision {node.decision!r}, in its branch or nested in it",
                )

    @staticmethod
    def precedes(definition: Definition, earlier: str, later: str) -> bool:
        target = definition.locations[earlier]
        name: str | None = later
        while name is not None:
            loc = definition.locations[name]
            if (loc.owner, loc.branch) == (target.owner, target.branch):
                return loc.index > target.index
            name = loc.owner
        return False
