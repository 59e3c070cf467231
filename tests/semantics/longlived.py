"""Long-lived runs: a perpetual loop that continues as new, and a step guarded by
`ctx.patched` (this module is the code before the deploy; longlived_v2 the code after)."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step
from tests.semantics.workflows import journal


class Poller(Workflow):
    """Polls once per run and continues as new until `rounds` runs are done."""

    name = "semantics_poller"

    @step
    def poll(self, ctx: Any) -> None:
        journal(ctx, f"poll-{ctx.input['round']}")
        ctx.put("seen", list(range(100)))  # dropped: each run starts from its input

    @step
    def next_round(self, ctx: Any) -> int:
        if ctx.input["round"] < ctx.input["rounds"]:
            ctx.continue_as_new({**ctx.input, "round": ctx.input["round"] + 1})
        return int(ctx.input["round"])


class ChildThatContinues(Workflow):
    name = "semantics_child_continues"

    @step
    def go_on(self, ctx: Any) -> None:
        ctx.continue_as_new({})


class ParentOfContinuing(Workflow):
    name = "semantics_parent_of_continuing"

    @step
    def start(self, ctx: Any) -> None:
        ctx.put("child", ctx.start_child(ChildThatContinues, {}))

    @step
    def wait(self, ctx: Any) -> None:
        ctx.wait_for_child(ctx["child"])


class Shipping(Workflow):
    """Before the deploy: waits for a pickup, then ships the old way."""

    name = "semantics_shipping"

    @step
    def ship(self, ctx: Any) -> str:
        journal(ctx, "packed")
        ctx.wait_for_event("picked_up")
        journal(ctx, "shipped-old")
        return "old"

    @step
    def notify(self, ctx: Any) -> str:
        return "notified"
