"""Workflows run by worker processes in the round-2 semantics tests.

Steps write lines to a journal file named in the input, one write(2) each with O_APPEND,
so lines of concurrent threads and processes never mix:

    <event> <workflow_id> <attempt> <time.time()>
"""

from __future__ import annotations

import time
from typing import Any

from durable import Retry, Workflow, step
from tests.crash.workflows import append_line

# Long enough that a test always stops it first, short enough not to hang a broken run.
LIMIT_SECONDS = 60


def journal(ctx: Any, event: str) -> None:
    append_line(ctx.input["journal"], f"{event} {ctx.workflow_id} {ctx.attempt} {time.time()}")


class CooperativeTimeout(Workflow):
    """Attempt 1 loops past its timeout checking `ctx.cancelled`; attempt 2 returns."""

    name = "semantics_cooperative_timeout"

    @step(timeout=1, retry=Retry(max_attempts=2, backoff="constant", base=0))
    def loop_until_cancelled(self, ctx: Any) -> int:
        journal(ctx, "start")
        if ctx.attempt == 1:
            started = time.monotonic()
            while not ctx.cancelled and time.monotonic() - started < LIMIT_SECONDS:
                time.sleep(0.02)
            journal(ctx, "stopped")
            ctx.raise_if_cancelled()
        journal(ctx, "end")
        return ctx.attempt


class StubbornTimeout(Workflow):
    """Attempt 1 ignores `ctx.cancelled` and runs `seconds` past its 1 s timeout."""

    name = "semantics_stubborn_timeout"

    @step(timeout=1, retry=Retry(max_attempts=2, backoff="constant", base=0))
    def ignore_cancellation(self, ctx: Any) -> int:
        journal(ctx, "start")
        if ctx.attempt == 1:
            time.sleep(ctx.input["seconds"])
        journal(ctx, "end")
        return ctx.attempt


class Quick(Workflow):
    name = "semantics_quick"

    @step
    def quick(self, ctx: Any) -> None:
        journal(ctx, "quick")


class UntilCancelled(Workflow):
    """Runs until its execution is cancelled, then says it saw it."""

    name = "semantics_until_cancelled"

    @step
    def wait_for_cancel(self, ctx: Any) -> None:
        journal(ctx, "start")
        started = time.monotonic()
        while not ctx.cancelled and time.monotonic() - started < LIMIT_SECONDS:
            time.sleep(0.02)
        journal(ctx, "stopped" if ctx.cancelled else "gave-up")


# -- inline runs ---------------------------------------------------------------------------

# What the inline async step saw when it was cancelled (the test process runs it).
SEEN: list[bool] = []


class InlineCooperative(Workflow):
    name = "semantics_inline_cooperative"

    @step(timeout=0.2, retry=Retry(max_attempts=1))
    def loop(self, ctx: Any) -> None:
        started = time.monotonic()
        while time.monotonic() - started < LIMIT_SECONDS:
            ctx.raise_if_cancelled()
            time.sleep(0.01)


class InlineNotCancelled(Workflow):
    name = "semantics_inline_not_cancelled"

    @step(timeout=30)
    def look(self, ctx: Any) -> bool:
        ctx.raise_if_cancelled()
        return bool(ctx.cancelled)


class InlineAsyncTimeout(Workflow):
    name = "semantics_inline_async_timeout"

    @step(timeout=0.2, retry=Retry(max_attempts=1))
    async def dawdle(self, ctx: Any) -> None:
        import asyncio

        try:
            await asyncio.sleep(LIMIT_SECONDS)
        finally:
            SEEN.append(ctx.cancelled)


class InlineLoop(Workflow):
    """Continues as new `rounds` times; each run's context starts from its input."""

    name = "semantics_inline_loop"

    @step
    def tick(self, ctx: Any) -> int:
        ctx.put("noise", "x" * 100)
        if ctx.input["round"] < ctx.input["rounds"]:
            ctx.continue_as_new({**ctx.input, "round": ctx.input["round"] + 1})
        return int(ctx.input["round"])


class InlineBadContinue(Workflow):
    name = "semantics_inline_bad_continue"

    @step(retry=Retry(max_attempts=1))
    def go_on(self, ctx: Any) -> None:
        ctx.continue_as_new(ctx.input["next"])


class InlinePatched(Workflow):
    name = "semantics_inline_patched"

    @step
    def first(self, ctx: Any) -> bool:
        return bool(ctx.patched("new-pricing"))

    @step
    def second(self, ctx: Any) -> list[bool]:
        return [ctx.patched("new-pricing"), ctx.patched("new-pricing")]
