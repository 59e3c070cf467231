"""Workflows run by real worker processes in end-to-end tests."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step


class ThreeSteps(Workflow):
    name = "e2e_three_steps"

    @step
    def first(self, ctx: Any) -> None:
        ctx.append("ran", "first")

    @step
    def second(self, ctx: Any) -> None:
        ctx.append("ran", "second")

    @step
    def third(self, ctx: Any) -> int:
        ctx.append("ran", "third")
        return len(ctx["ran"])
