"""Workflows for the graph tests: one with every construct and awkward names."""

from __future__ import annotations

from typing import Any

from durable import (
    NonRetryable,
    Workflow,
    case_match,
    decision,
    default,
    foreach,
    loop,
    on_decision,
    parallel,
    step,
    switch,
    when_result,
)


class Review(Workflow):
    """A foreach that waits for input on one item, a loop, a decision that can fail."""

    name = "graph_review"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.put("items", ctx.input.get("items", ["a", "b"]))

    with foreach("review_items", items=lambda ctx: ctx["items"], concurrency=1):

        @step
        def review_item(self, ctx: Any, item: str) -> None:
            if item == "ask":
                ctx.wait_for_input("approval")
            ctx.append("reviewed", item)

    with loop("poll", while_=lambda ctx: ctx.get("polls", 0) < 2):

        @step
        def poll_once(self, ctx: Any) -> None:
            ctx.increment("polls")

    @decision
    def verdict(self, ctx: Any) -> str:
        return str(ctx.input.get("verdict", "ok"))

    with on_decision(verdict):
        with when_result("ok"):

            @step
            def accept(self, ctx: Any) -> None:
                ctx.put("accepted", True)

        with when_result("bad"):

            @step
            def reject(self, ctx: Any) -> None:
                raise NonRetryable(RuntimeError("rejected"))


# Block names are free text; every export must keep them from breaking its syntax.
AWKWARD = 'say "hi" <b>&amp;</b>\n[x] {y} (z) |p| #1; end'


class Awkward(Workflow):
    name = "graph_awkward"

    @step
    def start(self, ctx: Any) -> None:
        pass

    with parallel(AWKWARD):

        @step
        def end(self, ctx: Any) -> None:
            pass

        @step
        def other(self, ctx: Any) -> None:
            pass

    with switch("route: 'a' -> b", on=lambda ctx: ctx.get("k")):
        with case_match('quote " here'):

            @step
            def quoted(self, ctx: Any) -> None:
                pass

        with case_match(None):
            pass

        with default():
            pass

    with switch("no default", on=lambda ctx: 1), case_match(1):

        @step
        def one(self, ctx: Any) -> None:
            pass
