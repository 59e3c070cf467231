"""The workflows of the Core v2 scenarios (io, fanout, starts), imported by their workers too."""

from __future__ import annotations

import asyncio
from typing import Any

from durable import Workflow, foreach, step

# Each I/O step's simulated call: the workload is three 100 ms awaits.
IO_SECONDS = 0.1


class ThreeSleeps(Workflow):
    """bench/io_bound.py: three async steps, each awaiting 100 ms as an HTTP call would."""

    name = "bench_core_three_sleeps"

    @step
    async def first(self, ctx: Any) -> None:
        await asyncio.sleep(IO_SECONDS)

    @step
    async def second(self, ctx: Any) -> None:
        await asyncio.sleep(IO_SECONDS)

    @step
    async def third(self, ctx: Any) -> None:
        await asyncio.sleep(IO_SECONDS)


class WideForeach(Workflow):
    """bench/fanout.py: one foreach of input["n"] one-step no-op items, each appending its
    number, so that the join's context can be checked for exactness (`out == range(n)`)."""

    name = "bench_core_wide_foreach"

    with foreach("items", items=lambda ctx: list(range(ctx.input["n"]))):

        @step
        def item(self, ctx: Any, item: int) -> None:
            ctx.append("out", item)


class OneNoOp(Workflow):
    """bench/starts.py: what start() and start_many() create (never run there)."""

    name = "bench_core_one_noop"

    @step
    def only(self, ctx: Any) -> None:
        return None
