"""The no-op workflows the benchmark runs (imported by its workers too)."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step


class ThreeNoOps(Workflow):
    """The throughput batch: three steps that do nothing."""

    name = "bench_run_three_noops"

    @step
    def first(self, ctx: Any) -> None:
        return None

    @step
    def second(self, ctx: Any) -> None:
        return None

    @step
    def third(self, ctx: Any) -> None:
        return None


class LatencyProbe(ThreeNoOps):
    """The same three no-op steps under another name, so probes and batch are told apart."""

    name = "bench_run_latency_probe"


class Finished(ThreeNoOps):
    """bench/scale.py's template for the millions of finished executions it copies."""

    name = "bench_run_finished"


class ClaimProbe(ThreeNoOps):
    """bench/scale.py's ready tasks whose claim is timed (then deleted, never run)."""

    name = "bench_run_claim_probe"
