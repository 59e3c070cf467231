"""Workflows for the observability tests, run inline and by real workers.

Names start with `obs_`. The chatter steps print, write to stderr and log numbered lines
tagged with their own item and attempt; they first wait at a file barrier until every item
has started, so all of them run (and write) at the same time in one worker.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

from durable import Retry, Workflow, foreach, step

ITEMS = 8
LINES = 25
BARRIER_TIMEOUT = 30.0


def tag_of(item: int, attempt: int) -> str:
    return f"<item {item} attempt {attempt}>"


def expected_lines(item: int, attempt: int) -> dict[str, list[str]]:
    """The messages one chatter attempt writes, per stream, in order."""
    tag = tag_of(item, attempt)
    return {
        "stdout": [f"{tag} out {i}" for i in range(LINES)],
        "stderr": [f"{tag} err {i}" for i in range(LINES)],
        "logging": [f"{tag} log {i}" for i in range(LINES)],
    }


def _arrive(barrier: str, item: int, attempt: int) -> Path:
    folder = Path(barrier)
    (folder / f"{item}-{attempt}").touch()
    return folder


def _all_arrived(folder: Path) -> bool:
    return len(list(folder.iterdir())) >= ITEMS


def _write_line(tag: str, item: int, i: int) -> None:
    print(f"{tag} out {i}")
    sys.stderr.write(f"{tag} err {i}\n")
    # Any logger, not only Durable's: one per item, warnings on odd lines.
    log = logging.getLogger(f"obs.item{item}")
    log.log(logging.WARNING if i % 2 else logging.INFO, "%s log %d", tag, i)


class SyncChatter(Workflow):
    """Eight sync steps in threads of one worker, all writing at once."""

    name = "obs_sync_chatter"

    with foreach("chatter", items=lambda ctx: list(range(ITEMS)), concurrency=ITEMS):

        @step
        def talk(self, ctx: Any, item: int) -> bool:
            folder = _arrive(ctx.input["barrier"], item, ctx.attempt)
            deadline = time.monotonic() + BARRIER_TIMEOUT
            while not _all_arrived(folder) and time.monotonic() < deadline:
                time.sleep(0.02)
            overlapped = _all_arrived(folder)
            tag = tag_of(item, ctx.attempt)
            for i in range(LINES):
                _write_line(tag, item, i)
                time.sleep(0.003)
            return overlapped


class AsyncChatter(Workflow):
    """Eight async steps as tasks of one event loop, all writing at once."""

    name = "obs_async_chatter"

    with foreach("chatter", items=lambda ctx: list(range(ITEMS)), concurrency=ITEMS):

        @step
        async def talk(self, ctx: Any, item: int) -> bool:
            folder = _arrive(ctx.input["barrier"], item, ctx.attempt)
            deadline = time.monotonic() + BARRIER_TIMEOUT
            while not _all_arrived(folder) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            overlapped = _all_arrived(folder)
            tag = tag_of(item, ctx.attempt)
            for i in range(LINES):
                _write_line(tag, item, i)
                await asyncio.sleep(0.003)
            return overlapped


class FailsOnce(Workflow):
    """The first attempt prints, then fails; the second succeeds."""

    name = "obs_fails_once"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def flaky(self, ctx: Any) -> str:
        print(f"attempt {ctx.attempt} starting")
        if ctx.attempt == 1:
            raise ValueError("boom on attempt 1")
        print(f"attempt {ctx.attempt} done")
        return "ok"


class Noisy(Workflow):
    """Prints `input["lines"]` lines of `input["width"]` characters, then fails if
    `input["fail"]`."""

    name = "obs_noisy"

    @step(retry=Retry(max_attempts=1))
    def shout(self, ctx: Any) -> None:
        for i in range(ctx.input["lines"]):
            print(f"{i:04d} " + "x" * ctx.input["width"])
        if ctx.input.get("fail"):
            raise RuntimeError("too loud")


class Steps(Workflow):
    """Two steps that each print and log a little; `input["pause"]` seconds between lines."""

    name = "obs_steps"

    @step
    def first(self, ctx: Any) -> None:
        for i in range(3):
            print(f"first {i}")
            time.sleep(ctx.input.get("pause", 0))

    @step
    def second(self, ctx: Any) -> None:
        for i in range(3):
            logging.getLogger("obs.second").warning("second %d", i)
            time.sleep(ctx.input.get("pause", 0))


# Like the app loggers of many Django LOGGING configs: records never reach the root logger.
ISOLATED = logging.getLogger("obs.isolated")
ISOLATED.propagate = False


class Loggers(Workflow):
    """Records of several loggers and levels, one with a traceback."""

    name = "obs_loggers"

    @step
    def log(self, ctx: Any) -> None:
        logging.getLogger("obs.lib").warning("plain %s", "warning")
        ISOLATED.error("not propagated")
        logging.getLogger("obs.lib").info("an info")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logging.getLogger("obs.lib").exception("caught it")
        logging.getLogger("obs.lib").debug("below the level: dropped")


class Approval(Workflow):
    """Waits for an input `decision` (a form), then for an event `shipped`."""

    name = "obs_approval"

    @step(retry=Retry(max_attempts=1))
    def decide(self, ctx: Any) -> None:
        answer = ctx.wait_for_input(
            "decision",
            type="form",
            fields=[
                {"name": "approved", "type": "boolean", "required": True},
                {"name": "note", "type": "text", "max_length": 5},
            ],
        )
        ctx.put("decision", answer)

    @step(retry=Retry(max_attempts=1))
    def ship(self, ctx: Any) -> None:
        ctx.put("shipped", ctx.wait_for_event("shipped"))


GATE_TIMEOUT = 60.0


def wait_for_gate(folder: str, name: str) -> bool:
    """Block until the test creates file `name` in `folder` (bounded; False if it never
    does): the step keeps running, logged lines and all, until the test lets it go on."""
    gate = Path(folder) / name
    deadline = time.monotonic() + GATE_TIMEOUT
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return gate.exists()


class LiveLines(Workflow):
    """Logs a line, waits at gate `one`, prints a line, waits at gate `two`, logs a last
    line: its first lines should be visible while it waits."""

    name = "obs_live_lines"

    @step(retry=Retry(max_attempts=1))
    def slow(self, ctx: Any) -> bool:
        logging.getLogger("obs.live").info("line 1")
        passed = wait_for_gate(ctx.input["gates"], "one")
        print("line 2")
        passed = wait_for_gate(ctx.input["gates"], "two") and passed
        logging.getLogger("obs.live").info("line 3")
        return passed


LIVE_ITEMS = 3


class LiveChatter(Workflow):
    """Three steps at once in one worker, each logging its own line 1, waiting at gate
    `go`, then logging its own line 2."""

    name = "obs_live_chatter"

    with foreach("chatter", items=lambda ctx: list(range(LIVE_ITEMS)), concurrency=LIVE_ITEMS):

        @step(retry=Retry(max_attempts=1))
        def talk(self, ctx: Any, item: int) -> bool:
            print(f"item {item} line 1")
            passed = wait_for_gate(ctx.input["gates"], "go")
            logging.getLogger(f"obs.item{item}").warning("item %d line 2", item)
            return passed


class LiveAfterWait(Workflow):
    """Logs, parks on event `go`; the resumed run logs again, waits at gate `end`, logs a
    last line. The resumed run's lines are appended to the first run's."""

    name = "obs_live_after_wait"

    @step(retry=Retry(max_attempts=1))
    def resume(self, ctx: Any) -> bool:
        print("before the event")
        ctx.wait_for_event("go")
        print("after the event")
        passed = wait_for_gate(ctx.input["gates"], "end")
        print("the end")
        return passed
