"""Workflows the scheduler tests start (also loaded by scheduler and worker subprocesses)."""

from __future__ import annotations

from durable import Workflow, step


class SchedulerProbe(Workflow):
    name = "scheduler_probe"

    @step
    def record(self, ctx):
        ctx.put("ran", True)
