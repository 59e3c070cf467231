"""Workflows `bench/rate_limit.py` runs (imported by its workers too).

The workflow's rate comes from the environment so the bench and its workers agree on it.
"""

from __future__ import annotations

import os
from typing import Any

from durable import Workflow, step


class RateLimitedCall(Workflow):
    """One no-op step; the workflow's own `rate_limit` paces its starts."""

    name = "bench_rate_limited_call"
    rate_limit = os.environ.get("BENCH_WORKFLOW_RATE", "600/m")

    @step
    def call(self, ctx: Any) -> None:
        return None


class QueuePacedCall(Workflow):
    """One no-op step on the `paced` queue, whose `rate_limit` (settings) paces it."""

    name = "bench_queue_paced_call"
    queue = "paced"

    @step
    def call(self, ctx: Any) -> None:
        return None
