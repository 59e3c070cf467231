"""The workflow `bench/waiting.py` parks by the thousand (imported by its worker too)."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step


class WaitForEvent(Workflow):
    name = "bench_wait_for_event"

    @step
    def wait(self, ctx: Any) -> None:
        ctx.put("got", ctx.wait_for_event("go"))
