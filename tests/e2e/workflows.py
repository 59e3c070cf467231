"""Workflows run by real worker processes in end-to-end tests.

Steps that a test must catch in the middle write a line to a marker file (its path comes in
the input) before they block, so the test waits for an event instead of guessing a delay.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from durable import (
    Retry,
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

# Long enough that a test always interrupts it first; short enough that a broken test
# does not hang a worker for the rest of the run.
BLOCK_SECONDS = 120
PEER_TIMEOUT = 30.0


def record_run(ctx: Any) -> bool:
    """Append this process's pid to the marker file; return whether this is the first run."""
    marker = Path(ctx.input["marker"])
    first_run = not marker.exists()
    with marker.open("a") as out:
        out.write(f"{os.getpid()}\n")
    return first_run


def wait_for_peers(ctx: Any, steps: list[str], count: int) -> None:
    """Block until `count` runs of `steps` of this execution were claimed (or give up).

    Worker processes serve one step at a time in the tests that use this, so two runs
    in flight together are on two different workers.
    """
    from durable.models import StepExecution

    deadline = time.monotonic() + PEER_TIMEOUT
    while time.monotonic() < deadline:
        claimed = StepExecution.objects.filter(
            execution__workflow_id=ctx.workflow_id, step__in=steps
        ).count()
        if claimed >= count:
            return
        time.sleep(0.05)


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


class EveryConstruct(Workflow):
    """Each block of the DSL once, plus an async step and a step that succeeds on retry."""

    name = "e2e_every_construct"

    @decision
    def classify(self, ctx: Any) -> str:
        return "big" if ctx.input["amount"] > 100 else "small"

    with on_decision(classify):
        with when_result("big"):

            @step
            def handle_big(self, ctx: Any) -> None:
                ctx.put("size", "big")

        with when_result("small"):

            @step
            def handle_small(self, ctx: Any) -> None:
                ctx.put("size", "small")

    with parallel("notify"):

        @step
        def notify_sync(self, ctx: Any) -> None:
            ctx.append("notified", "sync")

        @step
        async def notify_async(self, ctx: Any) -> str:
            await asyncio.sleep(0.05)
            ctx.append("notified", "async")
            return "sent"

    with foreach("per_item", items=lambda ctx: ctx.input["items"], concurrency=2):

        @step
        def handle_item(self, ctx: Any, item: int) -> int:
            time.sleep(0.1)
            ctx.append("handled", item)
            ctx.increment("total", item)
            return item * 10

    with loop("poll", while_=lambda ctx: ctx.get("polls", 0) < 3):

        @step
        def poll_once(self, ctx: Any) -> None:
            ctx.increment("polls")

    with switch("route", on=lambda ctx: ctx.input["region"]):
        with case_match("eu"):

            @step
            def route_eu(self, ctx: Any) -> None:
                ctx.put("route", "eu")

        with default():

            @step
            def route_elsewhere(self, ctx: Any) -> None:
                ctx.put("route", "elsewhere")

    @step(retry=Retry(max_attempts=3, backoff="constant", base=0.1))
    def flaky_call(self, ctx: Any) -> None:
        if ctx.attempt < 3:
            raise ConnectionError(f"upstream unavailable (attempt {ctx.attempt})")
        ctx.put("flaky_succeeded_on", ctx.attempt)

    @step
    def summarise(self, ctx: Any) -> dict[str, Any]:
        return {"size": ctx["size"], "route": ctx["route"], "total": ctx.get("total", 0)}


class BookTrip(Workflow):
    """A saga: the ticket cannot be issued, so the charge and the seat are undone."""

    name = "e2e_book_trip"

    @step(compensate="release_seat")
    def reserve_seat(self, ctx: Any) -> None:
        ctx.put("seat", "12A")

    @step(compensate="refund")
    def charge(self, ctx: Any) -> None:
        ctx.put("charge_id", "ch_1")

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0.1))
    def issue_ticket(self, ctx: Any) -> None:
        raise RuntimeError("the ticket printer is on fire")

    def release_seat(self, ctx: Any) -> None:
        assert ctx["seat"] == "12A"

    def refund(self, ctx: Any) -> None:
        assert ctx["charge_id"] == "ch_1"


class FanOutAcrossWorkers(Workflow):
    """Parallel branches and foreach items that only finish once a peer is running too."""

    name = "e2e_fan_out_across_workers"

    with parallel("branches"):

        @step
        def left(self, ctx: Any) -> None:
            wait_for_peers(ctx, ["left", "right"], 2)

        @step
        def right(self, ctx: Any) -> None:
            wait_for_peers(ctx, ["left", "right"], 2)

    with foreach("items", items=lambda ctx: ctx.input["items"], concurrency=2):

        @step
        def work_item(self, ctx: Any, item: int) -> None:
            wait_for_peers(ctx, ["work_item"], 2)
            ctx.append("worked", item)


class PaymentsRouting(Workflow):
    """The middle step runs on the payments queue; the others on the default queue."""

    name = "e2e_payments_routing"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.put("prepared", True)

    @step(queue="payments")
    def charge_card(self, ctx: Any) -> None:
        ctx.put("charged", True)

    @step
    def send_receipt(self, ctx: Any) -> None:
        ctx.put("receipt", True)


class InterruptibleStep(Workflow):
    """`long_step` blocks on its first run (a test kills or stops its worker there)."""

    name = "e2e_interruptible_step"

    @step
    def before(self, ctx: Any) -> None:
        ctx.put("before", True)

    @step
    def long_step(self, ctx: Any) -> None:
        if record_run(ctx):
            time.sleep(BLOCK_SECONDS)
        ctx.put("long_step_done", True)

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after", True)


class ShortStep(Workflow):
    """`short_step` takes a couple of seconds: long enough to stop its worker meanwhile."""

    name = "e2e_short_step"

    @step
    def short_step(self, ctx: Any) -> None:
        record_run(ctx)
        time.sleep(ctx.input.get("seconds", 2))
        ctx.put("short_done", True)

    @step
    def next_step(self, ctx: Any) -> None:
        ctx.put("next_done", True)


class AsyncIO(Workflow):
    """I/O-bound steps, as a scraper or an LLM call has: three awaits of 0.1 s."""

    name = "e2e_async_io"

    @step
    async def fetch(self, ctx: Any) -> None:
        await asyncio.sleep(0.1)

    @step
    async def clean(self, ctx: Any) -> None:
        await asyncio.sleep(0.1)

    @step
    async def embed(self, ctx: Any) -> int:
        await asyncio.sleep(0.1)
        return int(ctx.input["n"])


# Bodies of BoundedBodies running in this (worker) process now, async and sync alike.
_bodies_lock = threading.Lock()
_bodies_running = 0


def _enter_body() -> int:
    global _bodies_running
    with _bodies_lock:
        _bodies_running += 1
        return _bodies_running


def _leave_body() -> None:
    global _bodies_running
    with _bodies_lock:
        _bodies_running -= 1


class BoundedBodies(Workflow):
    """Async and sync steps that record how many bodies of theirs ran at once when they
    started: a queue's concurrency bounds both kinds."""

    name = "e2e_bounded_bodies"

    @step
    async def first(self, ctx: Any) -> None:
        ctx.append("seen", _enter_body())
        try:
            await asyncio.sleep(0.05)
        finally:
            _leave_body()

    @step
    def second(self, ctx: Any) -> None:
        ctx.append("seen", _enter_body())
        try:
            time.sleep(0.05)
        finally:
            _leave_body()

    @step
    async def third(self, ctx: Any) -> list[int]:
        ctx.append("seen", _enter_body())
        try:
            await asyncio.sleep(0.05)
        finally:
            _leave_body()
        return list(ctx["seen"])


class WideForeach(Workflow):
    """One foreach over `n` items, each appending its item: the join must hold every one,
    in item order."""

    name = "e2e_wide_foreach"

    with foreach("items", items=lambda ctx: list(range(ctx.input["n"]))):

        @step
        def item(self, ctx: Any, item: int) -> None:
            ctx.append("out", item)
