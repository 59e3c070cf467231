"""The workflow of tests/crash/test_global_concurrency.py: workers load it with the queue
`capped` configured (DURABLE_EXTRA_QUEUES), which the other crash tests' workers lack."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from durable import Workflow, step
from tests.crash.workflows import append_line


class CappedStep(Workflow):
    """One step on the queue `capped`, whose global_concurrency the test sets: it journals
    `start <time> <pid> <run>` and `end <time> <pid> <run>` (wall clock, one machine)."""

    name = "crash_capped_step"
    queue = "capped"

    @step
    def work(self, ctx: Any) -> str:
        run = uuid.uuid4().hex[:12]
        append_line(ctx.input["journal"], f"start {time.time():.6f} {os.getpid()} {run}")
        time.sleep(ctx.input.get("pause", 0.3))
        append_line(ctx.input["journal"], f"end {time.time():.6f} {os.getpid()} {run}")
        return run
