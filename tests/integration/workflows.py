"""Workflows exercised by the integration tests, one per behaviour under test.

Names start with `it_` so they never collide with workflows of other test tiers.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from durable import (
    NonRetryable,
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


class Linear(Workflow):
    """Three steps that each leave a trace in the context and return a value."""

    name = "it_linear"

    @step
    def first(self, ctx: Any) -> str:
        ctx.put("first", ctx.input["seed"] + 1)
        return "first done"

    @step
    def second(self, ctx: Any) -> dict[str, Any]:
        ctx.put("second", ctx["first"] * 10)
        return {"seen_first": ctx["first"]}

    @step
    def third(self, ctx: Any) -> list[int]:
        ctx.put("third", True)
        return [ctx["first"], ctx["second"]]


class Routed(Workflow):
    """A decision with two branches and a step after the block."""

    name = "it_routed"

    @decision
    def pick_route(self, ctx: Any) -> Any:
        return ctx.input["route"]

    with on_decision(pick_route):
        with when_result("express"):

            @step
            def ship_express(self, ctx: Any) -> None:
                ctx.append("ran", "ship_express")

        with when_result("standard"):

            @step
            def ship_standard(self, ctx: Any) -> None:
                ctx.append("ran", "ship_standard")

    @step
    def after_routing(self, ctx: Any) -> None:
        ctx.append("ran", "after_routing")


class FalsyDecision(Workflow):
    """A decision whose results are the falsy values Python says are equal to each other."""

    name = "it_falsy_decision"

    @decision
    def choose(self, ctx: Any) -> Any:
        return ctx.input["value"]

    with on_decision(choose):
        with when_result(False):

            @step
            def on_false(self, ctx: Any) -> None:
                ctx.append("ran", "on_false")

        with when_result(None):

            @step
            def on_none(self, ctx: Any) -> None:
                ctx.append("ran", "on_none")

        with when_result(0):

            @step
            def on_zero(self, ctx: Any) -> None:
                ctx.append("ran", "on_zero")

        with when_result(""):

            @step
            def on_empty(self, ctx: Any) -> None:
                ctx.append("ran", "on_empty")

    @step
    def done(self, ctx: Any) -> None:
        ctx.append("ran", "done")


class Fanned(Workflow):
    """Three parallel branches that write, append and increment, then a join step."""

    name = "it_fanned"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.init_accumulator("log", [])
        ctx.put("counter", 100)

    with parallel("fan"):

        @step
        def branch_a(self, ctx: Any) -> None:
            ctx.put("a_saw", sorted(ctx.data))
            ctx.put("a_wrote", "a")
            ctx.append("log", "a")
            ctx.increment("counter", 1)

        @step
        def branch_b(self, ctx: Any) -> None:
            ctx.put("b_saw_a", "a_wrote" in ctx)
            ctx.put("b_saw_log", ctx["log"])
            ctx.append("log", "b")
            ctx.increment("counter", 10)

        @step
        def branch_c(self, ctx: Any) -> None:
            ctx.put("c_saw_counter", ctx["counter"])
            ctx.append("log", "c")
            ctx.increment("counter", 100)

    @step
    def joined(self, ctx: Any) -> dict[str, Any]:
        return {"log": ctx["log"], "counter": ctx["counter"]}


class Itemised(Workflow):
    """A foreach without a concurrency limit."""

    name = "it_itemised"

    with foreach("each_item", items=lambda ctx: ctx["items"]):

        @step
        def handle_item(self, ctx: Any, item: Any) -> int:
            ctx.append("doubled", item * 2)
            ctx.increment("total", item)
            return int(item * 2)

    @step
    def summarise(self, ctx: Any) -> int:
        return int(ctx["total"])


class ItemisedTwoAtATime(Workflow):
    """A foreach that may run at most two items at once."""

    name = "it_itemised_two"

    with foreach("each_item_limited", items=lambda ctx: ctx["items"], concurrency=2):

        @step
        def handle_limited(self, ctx: Any, item: Any) -> None:
            ctx.append("seen", item)

    @step
    def finish(self, ctx: Any) -> list[Any]:
        return list(ctx["seen"])


class Counting(Workflow):
    """A loop that runs while its condition holds."""

    name = "it_counting"

    with loop("count_up", while_=lambda ctx: ctx.get("n", 0) < ctx.input["until"]):

        @step
        def tick(self, ctx: Any) -> int:
            ctx.increment("n", 1)
            ctx.append("ticks", ctx.attempt)
            return int(ctx["n"])

    @step
    def report(self, ctx: Any) -> int:
        return int(ctx.get("n", 0))


class Runaway(Workflow):
    """A loop whose condition never becomes false; its guard must stop it."""

    name = "it_runaway"

    with loop("forever", while_=lambda ctx: True, max_iterations=3):

        @step
        def spin(self, ctx: Any) -> None:
            ctx.increment("spins", 1)

    @step
    def never_reached(self, ctx: Any) -> None:
        ctx.put("escaped", True)


class Routing(Workflow):
    """A switch with two cases and a default."""

    name = "it_routing"

    with switch("by_category", on=lambda ctx: ctx["category"]):
        with case_match("billing"):

            @step
            def to_billing(self, ctx: Any) -> str:
                return "billing"

        with case_match("tech"):

            @step
            def to_tech(self, ctx: Any) -> str:
                return "tech"

        with default():

            @step
            def to_general(self, ctx: Any) -> str:
                return "general"


class AsyncSteps(Workflow):
    """`async def` steps awaiting real coroutines."""

    name = "it_async_steps"

    @step
    async def fetch(self, ctx: Any) -> int:
        await asyncio.sleep(0.01)
        ctx.put("fetched", ctx.input["n"] * 3)
        return int(ctx.input["n"] * 3)

    @step
    async def store(self, ctx: Any) -> str:
        await asyncio.sleep(0)
        return f"stored {ctx['fetched']}"


class QueueHopping(Workflow):
    """Steps on the workflow's queue and on per-step queues."""

    name = "it_queue_hopping"

    @step
    def on_default(self, ctx: Any) -> None:
        ctx.append("ran", "on_default")

    @step(queue="payments")
    def on_payments(self, ctx: Any) -> None:
        ctx.append("ran", "on_payments")

    @step(queue="high_priority")
    def on_high(self, ctx: Any) -> None:
        ctx.append("ran", "on_high")


class Flaky(Workflow):
    """Fails every attempt before `ctx.input["succeed_on"]` (all of them by default)."""

    name = "it_flaky"

    @step(retry=Retry(max_attempts=4, backoff="exponential", base=2, max_backoff=3600))
    def shaky(self, ctx: Any) -> int:
        if ctx.attempt < ctx.input.get("succeed_on", 99):
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return int(ctx.attempt)


class FlakyCapped(Workflow):
    name = "it_flaky_capped"

    @step(retry=Retry(max_attempts=5, backoff="exponential", base=3, max_backoff=20))
    def shaky(self, ctx: Any) -> None:
        raise ConnectionError(f"attempt {ctx.attempt} failed")


class FlakyLinear(Workflow):
    name = "it_flaky_linear"

    @step(retry=Retry(max_attempts=4, backoff="linear", base=5, max_backoff=12))
    def shaky(self, ctx: Any) -> None:
        raise ConnectionError(f"attempt {ctx.attempt} failed")


class FlakyConstant(Workflow):
    name = "it_flaky_constant"

    @step(retry=Retry(max_attempts=3, backoff="constant", base=7))
    def shaky(self, ctx: Any) -> None:
        raise ConnectionError(f"attempt {ctx.attempt} failed")


class FlakyFast(Workflow):
    """Real, short backoffs, so a test can watch them with a clock."""

    name = "it_flaky_fast"

    @step(retry=Retry(max_attempts=3, backoff="linear", base=0.4))
    def shaky(self, ctx: Any) -> str:
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return "finally"


class DefaultRetries(Workflow):
    """No retry= on the step: the workflow's max_retries applies."""

    name = "it_default_retries"
    max_retries = 2

    @step
    def always_fails(self, ctx: Any) -> None:
        raise RuntimeError("nope")


class GivesUp(Workflow):
    name = "it_gives_up"

    @step(retry=Retry(max_attempts=5, backoff="constant", base=1))
    def refuse(self, ctx: Any) -> None:
        raise NonRetryable(ValueError("card declined"))


class Saga(Workflow):
    """Four steps; `reserve` and `charge` can be undone; `ship` fails."""

    name = "it_saga"

    @step(compensate="release")
    def reserve(self, ctx: Any) -> str:
        ctx.put("reserved", True)
        return "reserved"

    @step
    def notify(self, ctx: Any) -> None:
        ctx.put("notified", True)

    @step(compensate="refund", retry=Retry(max_attempts=2, backoff="constant", base=0))
    def charge(self, ctx: Any) -> str:
        ctx.put("charge_id", "ch_1")
        return "charged"

    @step(compensate="unship", retry=Retry(max_attempts=1))
    def ship(self, ctx: Any) -> None:
        raise RuntimeError("carrier unavailable")

    def release(self, ctx: Any) -> None:
        if ctx.input.get("release_fails"):
            raise RuntimeError("inventory service down")

    def refund(self, ctx: Any) -> None:
        assert ctx["charge_id"] == "ch_1"
        if ctx.input.get("refund_fails"):
            raise RuntimeError("refund rejected")

    def unship(self, ctx: Any) -> None:
        raise AssertionError("a step that never completed must not be compensated")


class ItemSaga(Workflow):
    """Compensation of foreach items: each completed item is undone with its own item."""

    name = "it_item_saga"

    with foreach("charge_each", items=lambda ctx: ctx["items"]):

        @step(compensate="refund_item")
        def charge_item(self, ctx: Any, item: Any) -> Any:
            return item

    @step(retry=Retry(max_attempts=1))
    def explode(self, ctx: Any) -> None:
        raise RuntimeError("boom")

    def refund_item(self, ctx: Any, item: Any) -> Any:
        return {"refunded": item}


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class CustomBaseException(BaseException):
    pass


class Misbehaving(Workflow):
    """One step that misbehaves in the way `ctx.input["how"]` names."""

    name = "it_misbehaving"

    @step(retry=Retry(max_attempts=3, backoff="constant", base=0))
    def misbehave(self, ctx: Any) -> Any:
        how = ctx.input["how"]
        if how == "system_exit":
            raise SystemExit(3)
        if how == "keyboard_interrupt":
            raise KeyboardInterrupt
        if how == "base_exception":
            raise CustomBaseException("custom base")
        if how == "unprintable":
            raise UnprintableError
        if how == "non_json_args":
            raise ValueError({1, 2}, b"\x00bytes", object())
        if how == "return_set":
            return {1, 2, 3}
        if how == "return_object":
            return object()
        if how == "return_nan":
            return math.nan
        if how == "put_nan":
            ctx.put("bad", math.nan)
        if how == "put_nul":
            ctx.put("bad", "a\u0000b")
        if how == "put_set":
            ctx.put("bad", {1, 2})
        if how == "put_bytes":
            ctx.put("bad", b"raw")
        if how == "put_colliding_keys":
            ctx.put("bad", {1: "int key", "1": "str key"})
        if how == "put_nested_inf":
            ctx.put("bad", {"deep": [1, {"x": math.inf}]})
        return "fine"

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after_ran", True)


class AsyncMisbehaving(Workflow):
    """An async step that raises on the shared event loop."""

    name = "it_async_misbehaving"

    @step(retry=Retry(max_attempts=1))
    async def misbehave(self, ctx: Any) -> None:
        await asyncio.sleep(0)
        if ctx.input["how"] == "system_exit":
            raise SystemExit(4)
        if ctx.input["how"] == "keyboard_interrupt":
            raise KeyboardInterrupt
        if ctx.input["how"] == "own_timeout":
            raise TimeoutError("upstream took too long")
        raise CustomBaseException("async custom base")


class Recovering(Workflow):
    """Fails its first attempt, succeeds afterwards; used to simulate crashed workers."""

    name = "it_recovering"

    @step(retry=Retry(max_attempts=5, backoff="constant", base=0))
    def work(self, ctx: Any) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("first attempt fails")
        ctx.put("ran_on_attempt", ctx.attempt)
        return int(ctx.attempt)

    @step
    def after_work(self, ctx: Any) -> None:
        ctx.put("after", True)


class Deadline(Workflow):
    """A whole-workflow timeout; the first step can be undone."""

    name = "it_deadline"
    timeout = 0.5

    @step(compensate="undo_quick")
    def quick(self, ctx: Any) -> None:
        ctx.put("quick", True)

    @step
    def too_late(self, ctx: Any) -> None:
        ctx.put("too_late_ran", True)

    def undo_quick(self, ctx: Any) -> None:
        return None


class DeadlineNoSaga(Workflow):
    name = "it_deadline_no_saga"
    timeout = 0.5

    @step
    def quick(self, ctx: Any) -> None:
        ctx.put("quick", True)

    @step
    def too_late(self, ctx: Any) -> None:
        ctx.put("too_late_ran", True)


class OneStep(Workflow):
    """The smallest workflow, for API tests."""

    name = "it_one_step"

    @step
    def only(self, ctx: Any) -> Any:
        return ctx.input.get("echo")


class TwoSteps(Workflow):
    name = "it_two_steps"

    @step
    def step_one(self, ctx: Any) -> None:
        ctx.put("one", True)

    @step
    def step_two(self, ctx: Any) -> None:
        ctx.put("two", True)


class AsyncSlow(Workflow):
    """An async step that outlives its timeout."""

    name = "it_async_slow"

    @step(timeout=0.2, retry=Retry(max_attempts=1))
    async def dawdle(self, ctx: Any) -> None:
        await asyncio.sleep(5)


class ParallelSaga(Workflow):
    """One parallel branch fails; the other can be undone."""

    name = "it_parallel_saga"

    with parallel("both_sides"):

        @step(compensate="undo_left")
        def left(self, ctx: Any) -> str:
            ctx.put("left", True)
            return "left"

        @step(retry=Retry(max_attempts=1))
        def right(self, ctx: Any) -> None:
            raise RuntimeError("right failed")

    @step
    def after_both(self, ctx: Any) -> None:
        ctx.put("after_both", True)

    def undo_left(self, ctx: Any) -> str:
        return "undone"


class ForgetsFailedWrites(Workflow):
    """Writes, then fails on its first attempt; the retry must not see those writes."""

    name = "it_forgets_failed_writes"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def write_then_fail(self, ctx: Any) -> Any:
        seen = {"half_done": ctx.get("half_done"), "log": ctx.get("log")}
        ctx.put("half_done", True)
        ctx.append("log", ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("after writing")
        return seen


class Surrogates(Workflow):
    """Lone UTF-16 surrogates: valid in a Python str, not storable as UTF-8 or in jsonb."""

    name = "it_surrogates"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def emit(self, ctx: Any) -> Any:
        how = ctx.input["how"]
        if how == "raise":
            raise ValueError("bad \ud800 text")
        if how == "put":
            ctx.put("bad", "x\udfffy")
        if how == "return":
            return {"text": "\ud83d"}
        return None


class Unstorable(Workflow):
    """Produces values storage refuses (ints past Python's 4300-digit str conversion limit),
    which `normalize` refuses first."""

    name = "it_unstorable"

    @step(compensate="undo_record")
    def record(self, ctx: Any) -> Any:
        return 10**5000 if ctx.input["where"] == "step" else "ok"

    @step(retry=Retry(max_attempts=1))
    def fail_afterwards(self, ctx: Any) -> None:
        raise RuntimeError("trigger the compensation")

    def undo_record(self, ctx: Any) -> Any:
        return 10**5000


class BrokenInit(Workflow):
    """A workflow class whose instances cannot be created."""

    name = "it_broken_init"

    def __init__(self) -> None:
        raise RuntimeError("no instance for you")

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def never_runs(self, ctx: Any) -> None:
        ctx.put("ran", True)
