"""Workflows for the broker end-to-end tests: a sleep and an event wait, so tasks travel
through the broker delayed and parked, not only ready."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step


class Hops(Workflow):
    name = "queue_hops"

    @step
    def first(self, ctx: Any) -> None:
        ctx.put("first", True)

    @step
    def nap(self, ctx: Any) -> None:
        ctx.sleep_for(seconds=ctx.input.get("nap", 1))

    @step
    def wait_go(self, ctx: Any) -> None:
        timeout = ctx.input.get("timeout", 60)
        ctx.put("go", ctx.wait_for_event("go", timeout=timeout, timeout_value="timed out"))

    @step
    def last(self, ctx: Any) -> Any:
        return ctx["go"]
