"""Workflows run by worker processes in the crash-safety tests (and bench/soak.py).

Every step of the chaos workflows writes "start" and "end" lines to a journal file (its
path comes in the input) with O_APPEND, so the order of the lines is the order of the
events across processes:

    start <workflow_id> <step> <scope> <pid> <run>
    end <workflow_id> <step> <scope> <pid> <run>

`run` is unique per run of a step body and is also the step's output, so the run whose
outcome was checkpointed can be found in the journal.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from durable import Retry, Workflow, foreach, parallel, step
from testproject.demo.models import LedgerEntry

# Long enough that a test always interrupts it first; short enough that a broken test
# does not hang a worker for the rest of the run.
BLOCK_SECONDS = 120


def append_line(path: str, line: str) -> None:
    """One write(2) on an O_APPEND descriptor: lines of concurrent processes never mix."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def journaled_run(ctx: Any, step_name: str, scope: str = "-") -> str:
    """The body of every chaos step: journal the start, work a little, journal the end."""
    run = uuid.uuid4().hex[:12]
    where = f"{ctx.workflow_id} {step_name} {scope} {os.getpid()} {run}"
    append_line(ctx.input["journal"], f"start {where}")
    time.sleep(ctx.input.get("pause", 0.1))
    append_line(ctx.input["journal"], f"end {where}")
    ctx.append("trail", f"{step_name}/{scope}")
    ctx.increment("steps_done")
    return run


class ChaosSequence(Workflow):
    name = "crash_chaos_sequence"

    @step
    def first(self, ctx: Any) -> str:
        return journaled_run(ctx, "first")

    @step
    def second(self, ctx: Any) -> str:
        return journaled_run(ctx, "second")

    @step
    def third(self, ctx: Any) -> str:
        return journaled_run(ctx, "third")

    @step
    def fourth(self, ctx: Any) -> str:
        return journaled_run(ctx, "fourth")


class ChaosParallel(Workflow):
    name = "crash_chaos_parallel"

    @step
    def prepare(self, ctx: Any) -> str:
        return journaled_run(ctx, "prepare")

    with parallel("branches"):

        @step
        def left(self, ctx: Any) -> str:
            return journaled_run(ctx, "left")

        @step
        def right(self, ctx: Any) -> str:
            return journaled_run(ctx, "right")

    @step
    def finish(self, ctx: Any) -> str:
        return journaled_run(ctx, "finish")


class ChaosForeach(Workflow):
    name = "crash_chaos_foreach"

    @step
    def prepare(self, ctx: Any) -> str:
        return journaled_run(ctx, "prepare")

    with foreach("items", items=lambda ctx: ctx.input["items"], concurrency=2):

        @step
        def handle(self, ctx: Any, item: int) -> str:
            return journaled_run(ctx, "handle", str(item))

    @step
    def finish(self, ctx: Any) -> str:
        return journaled_run(ctx, "finish")


CHAOS_WORKFLOWS = (ChaosSequence, ChaosParallel, ChaosForeach)


def expected_runs(name: str, items: list[int]) -> list[tuple[str, str]]:
    """The (step, scope) runs a chaos workflow makes, as its steps journal them."""
    if name == ChaosSequence.name:
        return [(s, "-") for s in ("first", "second", "third", "fourth")]
    if name == ChaosParallel.name:
        return [(s, "-") for s in ("prepare", "left", "right", "finish")]
    return [("prepare", "-"), *(("handle", str(i)) for i in items), ("finish", "-")]


def record_run(ctx: Any) -> bool:
    """Append this process's pid to the marker file; return whether this is the first run."""
    marker = Path(ctx.input["marker"])
    first_run = not marker.exists()
    append_line(str(marker), str(os.getpid()))
    return first_run


class FencedStep(Workflow):
    """`slow_step`'s first run takes `seconds`; a test pauses its worker meanwhile."""

    name = "crash_fenced_step"

    @step
    def slow_step(self, ctx: Any) -> int:
        if record_run(ctx):
            time.sleep(ctx.input["seconds"])
        ctx.put("done_by", os.getpid())
        return os.getpid()

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after_saw", ctx["done_by"])


class LongStep(Workflow):
    """`long_step` blocks on its first run (a test stops its worker there)."""

    name = "crash_long_step"

    @step
    def long_step(self, ctx: Any) -> int:
        if record_run(ctx):
            time.sleep(BLOCK_SECONDS)
        return os.getpid()


def book(ctx: Any, key: str) -> None:
    LedgerEntry.objects.create(key=key, workflow_id=ctx.workflow_id)


class TransactionalRetry(Workflow):
    """The booking of attempt 1 is followed by a failure: it must not stay booked."""

    name = "crash_transactional_retry"

    @step(transactional=True, retry=Retry(max_attempts=2, backoff="constant", base=0.1))
    def book_once(self, ctx: Any) -> None:
        book(ctx, f"{ctx.workflow_id}:attempt-{ctx.attempt}")
        if ctx.attempt == 1:
            raise ConnectionError("the bank hung up after the booking")
        ctx.put("booked", True)


class TransactionalBooking(Workflow):
    """Books, then blocks on its first run: a test kills the worker after the booking."""

    name = "crash_transactional_booking"

    @step(transactional=True)
    def book_then_block(self, ctx: Any) -> None:
        book(ctx, f"{ctx.workflow_id}:{uuid.uuid4().hex}")
        if record_run(ctx):
            time.sleep(BLOCK_SECONDS)
        ctx.put("booked", True)


class PlainBooking(Workflow):
    """The same as TransactionalBooking without `transactional=True` (at-least-once)."""

    name = "crash_plain_booking"

    @step
    def book_then_block(self, ctx: Any) -> None:
        book(ctx, f"{ctx.workflow_id}:{uuid.uuid4().hex}")
        if record_run(ctx):
            time.sleep(BLOCK_SECONDS)
        ctx.put("booked", True)


class TransactionalFencedStep(Workflow):
    """A transactional booking whose first run takes `seconds`; a test pauses its worker."""

    name = "crash_transactional_fenced_step"

    @step(transactional=True)
    def book_slowly(self, ctx: Any) -> int:
        book(ctx, f"{ctx.workflow_id}:{os.getpid()}")
        if record_run(ctx):
            time.sleep(ctx.input["seconds"])
        return os.getpid()


class QuickSteps(Workflow):
    """Steps that take a moment each, for the recycling and restart tests."""

    name = "crash_quick_steps"

    @step
    def first(self, ctx: Any) -> None:
        time.sleep(ctx.input.get("pause", 0.2))
        ctx.append("ran", "first")

    @step
    def second(self, ctx: Any) -> None:
        time.sleep(ctx.input.get("pause", 0.2))
        ctx.append("ran", "second")

    @step
    def third(self, ctx: Any) -> int:
        time.sleep(ctx.input.get("pause", 0.2))
        ctx.append("ran", "third")
        return len(ctx["ran"])


class PoisonPill(Workflow):
    """`crash_worker` takes its whole worker process down, every time it runs."""

    name = "crash_poison_pill"

    @step
    def crash_worker(self, ctx: Any) -> None:
        record_run(ctx)
        os._exit(1)

    @step
    def never_reached(self, ctx: Any) -> None:
        ctx.put("reached", True)
