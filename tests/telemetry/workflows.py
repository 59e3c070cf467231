"""Workflows the telemetry tests run on real workers and inline. Names start `tm_`."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from django.db import connection
from opentelemetry import trace

from durable import Retry, Workflow, step

logger = logging.getLogger("tm.steps")


class Traced(Workflow):
    """A sync step that queries the database, an async one, and one that fails once."""

    name = "tm_traced"

    @step
    def query(self, ctx: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        # What an instrumented library does: a span of its own, under the current one.
        with trace.get_tracer("tm.app").start_as_current_span("app work (sync)"):
            pass

    @step
    async def fetch(self, ctx: Any) -> None:
        with trace.get_tracer("tm.app").start_as_current_span("app work (async)"):
            pass

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def flaky(self, ctx: Any) -> None:
        if ctx.attempt == 1:
            raise ValueError("the first attempt fails")


class Napper(Workflow):
    """Sleeps, then runs one more step (resumed by whichever worker is there)."""

    name = "tm_napper"

    @step
    def nap(self, ctx: Any) -> None:
        ctx.sleep_for(seconds=ctx.input["seconds"])

    @step
    def after(self, ctx: Any) -> None:
        pass


class Counted(Workflow):
    name = "tm_counted"

    @step
    def one(self, ctx: Any) -> None:
        pass

    @step
    async def two(self, ctx: Any) -> None:
        pass


class AlwaysFails(Workflow):
    name = "tm_always_fails"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def doomed(self, ctx: Any) -> None:
        raise RuntimeError("no luck")


class Stuck(Workflow):
    """Its first run hangs (its worker is frozen meanwhile); a re-run returns at once."""

    name = "tm_stuck"

    @step
    def hang(self, ctx: Any) -> None:
        marker = Path(ctx.input["marker"])
        if not marker.exists():
            marker.write_text("started")
            time.sleep(60)


class Card:
    """Not JSON: stored as its repr."""

    def __repr__(self) -> str:
        return "<Card ending 4242>"


class Talks(Workflow):
    """Logs with `extra`, at DEBUG, and prints."""

    name = "tm_talks"

    @step
    def talk(self, ctx: Any) -> None:
        logger.warning("charged %s", ctx.input["amount"], extra={"order_id": 7, "card": Card()})
        logger.debug("a debug detail")
        print("printed line")
        ctx.put("stdout", type(sys.stdout).__name__)


class Declined(Workflow):
    """Logs an error, then fails for good."""

    name = "tm_declined"

    @step(retry=Retry(max_attempts=1))
    def charge(self, ctx: Any) -> None:
        logger.error("card declined", extra={"order_id": 7})
        raise RuntimeError("declined by the bank")


class Booking(Workflow):
    """Books, then fails to pay for good: the booking is compensated."""

    name = "tm_booking"

    @step(compensate="unbook")
    def book(self, ctx: Any) -> None:
        pass

    @step(retry=Retry(max_attempts=1))
    def pay(self, ctx: Any) -> None:
        raise RuntimeError("payment refused")

    def unbook(self, ctx: Any) -> None:
        pass


class Child(Workflow):
    name = "tm_child"

    @step
    def work(self, ctx: Any) -> None:
        pass


class Parent(Workflow):
    name = "tm_parent"

    @step
    def spawn(self, ctx: Any) -> None:
        ctx.wait_for_child(ctx.start_child(Child, {}))


class Slow(Workflow):
    """A sync step past its timeout: failed by the worker at the deadline, for good."""

    name = "tm_slow"

    @step(timeout=1, retry=Retry(max_attempts=1))
    def crawl(self, ctx: Any) -> None:
        time.sleep(3)
