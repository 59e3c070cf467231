"""A workflow with a class schedule, loaded only by worker subprocesses (never imported by
the test process, so it does not join the registry other scheduler tests sync)."""

from __future__ import annotations

from durable import Workflow, step


class EveryTwoSeconds(Workflow):
    name = "every_two_seconds"
    cron = "* * * * * */2"
    cron_input = {"source": "class"}

    @step
    def record(self, ctx):
        ctx.put("ran", True)
