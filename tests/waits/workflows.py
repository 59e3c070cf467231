"""Workflows that wait: sleeps, events, human input. Run inline and by real workers.

Names start with `wt_` so they never collide with workflows of other test tiers. `TRACE`
records what step code did in this process (inline runs only): a re-run of a step after a
wait shows up as a second "start", a side effect after the last wait as an "effect".
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from durable import Retry, WaitTimeout, Workflow, foreach, loop, parallel, step

TRACE: dict[str, list[str]] = defaultdict(list)

FORM_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "text", "max_length": 10, "required": True},
    {"name": "notes", "type": "textarea", "max_length": 20},
    {"name": "amount", "type": "number"},
    {"name": "urgent", "type": "boolean"},
    {"name": "laptop", "type": "select", "options": ["MacBook Pro", "ThinkPad"]},
    {"name": "extras", "type": "multi_select", "options": ["mouse", "dock", "screen"]},
    {"name": "start", "type": "date"},
]


class SleepFor(Workflow):
    """Sleeps `input["seconds"]`, then records when it woke."""

    name = "wt_sleep_for"

    @step
    def nap(self, ctx: Any) -> None:
        TRACE[ctx.workflow_id].append("start")
        ctx.sleep_for(seconds=ctx.input["seconds"])
        TRACE[ctx.workflow_id].append("effect")
        ctx.put("woke_at", timezone.now().isoformat())

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after", True)


class SleepUntil(Workflow):
    name = "wt_sleep_until"
    max_retries = 1

    @step
    def nap(self, ctx: Any) -> None:
        when = ctx.input["until"]
        # "naive": a datetime without a timezone, which must be refused.
        ctx.sleep_until(datetime(2030, 1, 1) if when == "naive" else datetime.fromisoformat(when))
        ctx.put("woke_at", timezone.now().isoformat())


class OneEvent(Workflow):
    """Waits for `input["event"]`; `input["order_id"]` adds a filter, `input["timeout"]` a
    timeout, `input["timeout_value"]` (when present) a value to return on timeout."""

    name = "wt_one_event"

    @step(retry=Retry(max_attempts=1))
    def wait(self, ctx: Any) -> Any:
        options: dict[str, Any] = {"timeout": ctx.input.get("timeout")}
        if "order_id" in ctx.input:
            order_id = ctx.input["order_id"]
            options["filter"] = lambda e: isinstance(e, dict) and e.get("order_id") == order_id
        if "timeout_value" in ctx.input:
            options["timeout_value"] = ctx.input["timeout_value"]
        payload = ctx.wait_for_event(ctx.input.get("event", "ping"), **options)
        ctx.put("got", payload)
        return payload


class FilteredThenAny(Workflow):
    """The first step takes only the event of its order; the second takes what is left."""

    name = "wt_filtered_then_any"

    @step
    def mine(self, ctx: Any) -> None:
        order_id = ctx.input["order_id"]
        ctx.put("mine", ctx.wait_for_event("paid", filter=lambda e: e["order_id"] == order_id))

    @step
    def leftover(self, ctx: Any) -> None:
        ctx.put("leftover", ctx.wait_for_event("paid"))


class TwoSameEvents(Workflow):
    name = "wt_two_same_events"

    @step
    def both(self, ctx: Any) -> None:
        first = ctx.wait_for_event("tick")
        second = ctx.wait_for_event("tick")
        ctx.put("ticks", [first, second])


class EventTimeoutSaga(Workflow):
    """A wait that times out with no value raises WaitTimeout: retried, then compensated."""

    name = "wt_event_timeout_saga"

    @step(compensate="undo_reserve")
    def reserve(self, ctx: Any) -> None:
        ctx.put("reserved", True)

    def undo_reserve(self, ctx: Any) -> None:
        ctx.put("released", True)

    @step(retry=Retry(max_attempts=2, backoff="constant", base=1))
    def await_payment(self, ctx: Any) -> None:
        ctx.put("payment", ctx.wait_for_event("payment", timeout=60))


class AskInput(Workflow):
    """One `wait_for_input`; its keyword arguments come from `input["ask"]`."""

    name = "wt_ask_input"

    @step(retry=Retry(max_attempts=1))
    def ask(self, ctx: Any) -> Any:
        answer = ctx.wait_for_input("answer", **ctx.input.get("ask", {}))
        ctx.put("answer", answer)
        return answer


class AskInputRetried(Workflow):
    """An input that times out with no value; the step has a second attempt."""

    name = "wt_ask_input_retried"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=1))
    def ask(self, ctx: Any) -> None:
        ctx.put("answer", ctx.wait_for_input("approval", timeout=60))


class ReRun(Workflow):
    """Three waits, then a side effect: the step starts once per wait satisfied, the side
    effect happens once, and earlier waits return their values in order."""

    name = "wt_rerun"

    @step
    def gather(self, ctx: Any) -> None:
        TRACE[ctx.workflow_id].append("start")
        color = ctx.wait_for_event("color")
        size = ctx.wait_for_input("size")
        ctx.sleep_for(seconds=30)
        shape = ctx.wait_for_event("shape")
        TRACE[ctx.workflow_id].append(f"effect {color} {size} {shape}")
        ctx.increment("effects", 1)
        ctx.put("seen", [color, size, shape])


class ParallelEvents(Workflow):
    """Two branches waiting for different events, and one that does not wait."""

    name = "wt_parallel_events"

    with parallel("both"):

        @step
        def left(self, ctx: Any) -> None:
            ctx.put("left", ctx.wait_for_event("left"))
            ctx.put("left_saw", ctx.get("extra"))

        @step
        def right(self, ctx: Any) -> None:
            ctx.put("right", ctx.wait_for_event("right"))

        @step
        def busy(self, ctx: Any) -> None:
            ctx.put("busy", True)

    @step
    def joined(self, ctx: Any) -> None:
        ctx.put("joined", [ctx["left"], ctx["right"]])


class WaitsPastWorkflowTimeout(Workflow):
    """A wait (an event, or an input) with no deadline of its own, in a workflow with a 60 s
    timeout."""

    name = "wt_waits_past_workflow_timeout"
    timeout = 60

    @step
    def wait(self, ctx: Any) -> None:
        if ctx.input.get("kind") == "input":
            ctx.put("got", ctx.wait_for_input("never"))
        else:
            ctx.put("got", ctx.wait_for_event("never"))


class WaitThenInput(Workflow):
    """An event, then an input: for resume() and cancel tests."""

    name = "wt_wait_then_input"

    @step
    def first(self, ctx: Any) -> None:
        ctx.put("first", ctx.wait_for_event("go"))

    @step
    def second(self, ctx: Any) -> None:
        ctx.put("second", ctx.wait_for_input("ok"))


class AsyncWaits(Workflow):
    """Waits in an `async def` step."""

    name = "wt_async_waits"

    @step
    async def wait(self, ctx: Any) -> None:
        payload = ctx.wait_for_event("ping")
        answer = ctx.wait_for_input("answer")
        ctx.put("got", [payload, answer])


class WorkerSleep(Workflow):
    """For real workers: stamps the context before and after a real sleep."""

    name = "wt_worker_sleep"

    @step
    def nap(self, ctx: Any) -> None:
        ctx.sleep_for(seconds=ctx.input["seconds"])
        ctx.put("woke_at", timezone.now().isoformat())

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after", True)


class WorkerEventAndInput(Workflow):
    """For real workers: an event, then an input, then done."""

    name = "wt_worker_event_and_input"

    @step
    def wait(self, ctx: Any) -> None:
        ctx.put("event", ctx.wait_for_event("go"))
        ctx.put("answer", ctx.wait_for_input("ok", type="single_choice", choices=["yes", "no"]))


class LoopInputs(Workflow):
    """Each loop iteration asks the same input again."""

    name = "wt_loop_inputs"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.init_accumulator("answers", [])

    with loop("rounds", while_=lambda ctx: len(ctx["answers"]) < 2):

        @step
        def ask(self, ctx: Any) -> None:
            ctx.append("answers", ctx.wait_for_input("next"))


class ForeachEvents(Workflow):
    """Each item waits for its own event."""

    name = "wt_foreach_events"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.init_accumulator("got", [])

    with foreach("each", items=lambda ctx: ctx.input["items"]):

        @step
        def wait(self, ctx: Any, item: Any) -> None:
            ctx.append("got", ctx.wait_for_event(f"e{item}"))


class CatchTimeout(Workflow):
    """Catches a WaitTimeout, then waits again: a re-run meets the timeout again."""

    name = "wt_catch_timeout"

    @step
    def wait(self, ctx: Any) -> None:
        TRACE[ctx.workflow_id].append("start")
        try:
            ctx.put("a", ctx.wait_for_event("a", timeout=10))
        except WaitTimeout:
            ctx.put("a", "timed out")
        ctx.put("b", ctx.wait_for_event("b"))
        ctx.put("c", ctx.wait_for_input("c", timeout=10, timeout_value="default"))


class TwinWaits(Workflow):
    """Two branches waiting for the same event name: each must get its own event."""

    name = "wt_twin_waits"

    with parallel("twins"):

        @step
        def one(self, ctx: Any) -> None:
            ctx.put("one", ctx.wait_for_event("go"))

        @step
        def two(self, ctx: Any) -> None:
            ctx.put("two", ctx.wait_for_event("go"))


class AskUnstorable(Workflow):
    """Declares an input whose schema holds values that are not JSON."""

    name = "wt_ask_unstorable"

    @step(retry=Retry(max_attempts=1))
    def ask(self, ctx: Any) -> None:
        if ctx.input["bad"] == "choice":
            ctx.wait_for_input("pick", type="single_choice", choices=[object()])
        else:
            fields = [{"name": "x", "type": "select", "options": [b"x"]}]
            ctx.wait_for_input("pick", type="form", fields=fields)
