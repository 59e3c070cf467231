"""Workflows whose lifecycle events the tests in this package watch."""

from __future__ import annotations

from typing import Any

from durable import Retry, Workflow, step


class TwoSteps(Workflow):
    name = "events_two_steps"

    @step
    def first(self, ctx: Any) -> None:
        ctx.put("first", True)

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def second(self, ctx: Any) -> str:
        if ctx.attempt == 1:
            raise RuntimeError("flaky")
        return "done"


class Fails(Workflow):
    name = "events_fails"

    @step(retry=Retry(max_attempts=1))
    def only(self, ctx: Any) -> None:
        raise ValueError("nope")
