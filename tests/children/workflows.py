"""Workflows that start and wait for child workflows. Run inline and by real workers.

Names start with `cw_` so they never collide with workflows of other test tiers.
"""

from __future__ import annotations

from typing import Any

from durable import ChildWorkflowFailed, NonRetryable, Retry, Workflow, step


class Double(Workflow):
    """The child: doubles `n`; fails (without retrying) when `fail` is set."""

    name = "cw_double"

    @step
    def compute(self, ctx: Any) -> dict[str, Any]:
        if ctx.input.get("fail"):
            raise NonRetryable(f"cannot double {ctx.input['n']}")
        return {"doubled": ctx.input["n"] * 2}


class Parent(Workflow):
    """Starts a Double and returns what it returned."""

    name = "cw_parent"

    @step
    def delegate(self, ctx: Any) -> Any:
        child = ctx.start_child(Double, {"n": ctx.input["n"], "fail": ctx.input.get("fail")})
        ctx.put("child", child)
        result = ctx.wait_for_child(child)
        ctx.put("child_result", result)
        return result


class Saga(Workflow):
    """A failed child fails the parent's step, which undoes the step before it."""

    name = "cw_saga"

    @step(compensate="release")
    def reserve(self, ctx: Any) -> None:
        ctx.put("reserved", True)

    def release(self, ctx: Any) -> None:
        ctx.put("released", True)

    @step(retry=Retry(max_attempts=1))
    def delegate(self, ctx: Any) -> Any:
        return ctx.wait_for_child(ctx.start_child("cw_double", {"n": 1, "fail": True}))


class CatchFailure(Workflow):
    """Catches the child's failure and records what it carries."""

    name = "cw_catch_failure"

    @step
    def delegate(self, ctx: Any) -> None:
        child = ctx.start_child(Double, {"n": 1, "fail": True})
        try:
            ctx.wait_for_child(child)
        except ChildWorkflowFailed as exc:
            ctx.put("caught", {"id": exc.workflow_id, "status": exc.status, "error": exc.error})
        ctx.put("child", child)


class RetryWithNewChild(Workflow):
    """The first attempt's child fails; the retry starts a new child, which completes."""

    name = "cw_retry_new_child"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def delegate(self, ctx: Any) -> Any:
        child = ctx.start_child(Double, {"n": 5, "fail": ctx.attempt == 1})
        ctx.append("children", child)
        return ctx.wait_for_child(child)


class StartThenSleep(Workflow):
    """Starts a child, then parks twice (a sleep, then the child): the step runs three
    times, and must start one child only."""

    name = "cw_start_then_sleep"

    @step
    def delegate(self, ctx: Any) -> Any:
        first = ctx.start_child(Double, {"n": 2})
        second = ctx.start_child(Double, {"n": 3})
        ctx.put("children", [first, second])
        ctx.sleep_for(seconds=ctx.input.get("sleep", 0.5))
        return [ctx.wait_for_child(first), ctx.wait_for_child(second)]


class TwoSteps(Workflow):
    """The child finishes while the parent waits for an event; the later wait returns at once."""

    name = "cw_two_steps"

    @step
    def spawn(self, ctx: Any) -> None:
        ctx.put("child", ctx.start_child(Double, {"n": 7}))

    @step
    def collect(self, ctx: Any) -> Any:
        ctx.wait_for_event("go")
        return ctx.wait_for_child(ctx["child"])


class Forever(Workflow):
    """A leaf that waits for an event nobody sends."""

    name = "cw_forever"

    @step
    def hang(self, ctx: Any) -> None:
        ctx.wait_for_event("never")


class Middle(Workflow):
    name = "cw_middle"

    @step
    def spawn(self, ctx: Any) -> None:
        ctx.put("child", ctx.start_child(Forever))
        ctx.wait_for_child(ctx["child"])


class Top(Workflow):
    name = "cw_top"

    @step
    def spawn(self, ctx: Any) -> None:
        ctx.put("child", ctx.start_child(Middle))
        ctx.wait_for_child(ctx["child"])


class SetResult(Workflow):
    """The first step sets the result; the last step's output does not replace it."""

    name = "cw_set_result"

    @step
    def decide(self, ctx: Any) -> str:
        ctx.set_result({"explicit": ctx.input.get("value", 1)})
        return "decide's output"

    @step
    def finish(self, ctx: Any) -> str:
        return "finish's output"


class LastOutput(Workflow):
    name = "cw_last_output"

    @step
    def first(self, ctx: Any) -> int:
        return 1

    @step
    def last(self, ctx: Any) -> dict[str, bool]:
        return {"last": True}


class BadChild(Workflow):
    """Starts a child the way `input["how"]` says is wrong."""

    name = "cw_bad_child"

    @step(retry=Retry(max_attempts=1))
    def delegate(self, ctx: Any) -> None:
        how = ctx.input["how"]
        if how == "unknown_workflow":
            ctx.start_child("cw_no_such_workflow", {})
        elif how == "not_json":
            ctx.start_child(Double, {"n": {1, 2}})
        elif how == "not_a_dict":
            ctx.start_child(Double, [1])
        elif how == "unknown_queue":
            ctx.start_child(Double, {"n": 1}, queue="nowhere")
        elif how == "not_a_child":
            ctx.wait_for_child(ctx.input["other"])


class AsyncParent(Workflow):
    """An `async def` step starts and waits for a child (looked up off the event loop)."""

    name = "cw_async_parent"

    @step
    async def delegate(self, ctx: Any) -> Any:
        return ctx.wait_for_child(ctx.start_child(Double, {"n": ctx.input["n"]}))


class WaitWithTimeout(Workflow):
    name = "cw_wait_with_timeout"

    @step(retry=Retry(max_attempts=1))
    def delegate(self, ctx: Any) -> None:
        ctx.wait_for_child(ctx.start_child(Forever), timeout=60)


class FireAndForget(Workflow):
    """Starts a child and ends without waiting for it."""

    name = "cw_fire_and_forget"

    @step
    def spawn(self, ctx: Any) -> None:
        ctx.put("child", ctx.start_child(Forever))


class FailAfterSetResult(Workflow):
    name = "cw_fail_after_set_result"

    @step
    def first(self, ctx: Any) -> None:
        ctx.set_result("from first")

    @step(retry=Retry(max_attempts=1))
    def second(self, ctx: Any) -> None:
        ctx.set_result("from second")
        raise NonRetryable("no")
