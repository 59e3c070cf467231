"""Drives `Router` by hand, the way the store and the worker do, with no database.

Between routing passes the state and the tokens go through JSON, as they do when stored.
Steps are the workflow's real methods, run against a `Context` built from the token's view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from durable import Workflow
from durable.flow.branches import MemoryBranches
from durable.flow.context import Context
from durable.flow.ops import copy_json
from durable.flow.router import Advance, FlowState, Router
from durable.flow.token import Token
from durable.serialization import dumps, normalize


def _stored(value: Any) -> Any:
    return json.loads(dumps(value))


class Simulation:
    def __init__(
        self, workflow: type[Workflow], context: dict[str, Any] | None = None, input: Any = None
    ) -> None:
        self.definition = workflow.definition()
        # What a store keeps beside the state (parked items, finished branches' ops).
        self.branches = MemoryBranches()
        self.state = FlowState(
            normalize(context or {}), {}, "wf-test", normalize(input), branches=self.branches
        )
        self.ready: list[Token] = []
        self.completed = False
        self.ran: list[tuple[str, Any]] = []  # (step, item) in the order steps ran

    @property
    def context(self) -> dict[str, Any]:
        return self.state.context

    def _absorb(self, advance: Advance) -> Advance:
        self.state = FlowState(
            _stored(self.state.context),
            _stored(self.state.fanouts),
            "wf-test",
            self.state.input,
            branches=self.branches,
        )
        self.ready += [Token.from_json(_stored(token.to_json())) for token in advance.ready]
        self.completed = self.completed or advance.completed
        return advance

    def start(self) -> Simulation:
        self._absorb(Router(self.definition, self.state).start())
        return self

    def ready_steps(self) -> list[str]:
        return [token.node for token in self.ready]

    def take(self, name: str | None = None, index: int = 0) -> Token:
        """Remove a ready token: the `index`-th one at step `name` (any step if None)."""
        matching = [t for t in self.ready if name is None or t.node == name]
        token = matching[index]
        self.ready.remove(token)
        return token

    def run(self, token: Token) -> Advance:
        """Run the step `token` is at, then route on from it."""
        step = self.definition.step(token.node)
        view = Router(self.definition, self.state).view(token)
        ctx = Context(
            copy_json(view),
            input=self.state.input,
            workflow_id=self.state.workflow_id,
            current_step=step.name,
        )
        method = getattr(self.definition.workflow_class(), step.method)
        output = method(ctx, token.item) if step.takes_item else method(ctx)
        self.ran.append((step.name, token.item))
        return self.finish(token, ctx.ops, output)

    def finish(self, token: Token, ops: list[Any], output: Any) -> Advance:
        """Report `token`'s step done with `ops` and `output`, without running it."""
        output = normalize(output)
        return self._absorb(Router(self.definition, self.state).step_done(token, ops, output))

    def run_next(self, name: str | None = None, index: int = 0) -> Advance:
        return self.run(self.take(name, index))

    def run_all(self, pick: Callable[[list[Token]], Token] = lambda ready: ready[0]) -> Simulation:
        """Run ready steps (the one `pick` chooses each time) until none is left."""
        guard = 10_000
        while self.ready:
            guard -= 1
            assert guard, "the simulation did not finish"
            token = pick(self.ready)
            self.ready.remove(token)
            self.run(token)
        return self

    def step_names(self) -> list[str]:
        return [name for name, _ in self.ran]


def last_ready(ready: list[Token]) -> Token:
    return ready[-1]
