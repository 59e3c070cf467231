"""The io scenario: workflows of three async 100 ms steps on ONE worker, at concurrency C.

For each C of --io-concurrency (64, 200, 1000 by default; 2000 is the overload check):

1. The bound. A batch of --io-noop-workflows no-op workflows (bench/run_workflows.py) is
   run by one `durable_worker --queues default --concurrency C --no-scheduler`: that
   worker's no-op steps/s. The bound is min(C / 0.1 s, that rate): C steps of 100 ms in
   flight cannot finish faster than C / 0.1 a second, and the worker cannot checkpoint
   faster than it does no-op steps. The worker serves `default` alone, so C is its whole
   concurrency (the test project configures three queues, and --concurrency applies to
   each).
2. The run. Enough ThreeSleeps workflows (bench/core_workflows.py) for about --io-seconds
   at the bound are made ready (one start(), copied in SQL), then one worker with the same
   command runs them. steps/s is counted as the throughput rows count it: completed steps
   over first step start to last step end. Every 100 ms the worker's PostgreSQL
   connections (pg_stat_activity backends whose client port is one of the worker's
   sockets) and its RSS are sampled (bench/peers/sampling.py); the peaks are reported, and
   whether "too many clients" appears in its log.

A run is stopped after --io-timeout seconds: its unfinished and failed workflows are counted
and reported, not waited for (today's engine collapses at C = 200).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.peers.sampling import Sampler, log_says_too_many_clients
from bench.support import Workers, log_text, make_ready, wait_until, worker_command
from bench.throughput import finished

STEP_SECONDS = 0.1
STEPS = 3
QUEUE = "default"


def completed_steps(workflow_name: str) -> tuple[int, float]:
    """(completed steps, seconds from the first one's start to the last one's end)."""
    from django.db.models import Count, Max, Min

    from durable.models import StepExecution, StepStatus

    span = StepExecution.objects.filter(
        execution__workflow_name=workflow_name, status=StepStatus.COMPLETED
    ).aggregate(n=Count("id"), first=Min("started_at"), last=Max("completed_at"))
    if not span["n"]:
        return 0, 0.0
    return span["n"], (span["last"] - span["first"]).total_seconds()


def outcomes(workflow_name: str) -> dict[str, int]:
    """Executions by outcome: completed, failed (any other end) and unfinished."""
    from django.db.models import Count

    from durable.models import ExecutionStatus, WorkflowExecution

    unfinished = {
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.WAITING,
        ExecutionStatus.COMPENSATING,
    }
    tally = {"completed": 0, "failed": 0, "unfinished": 0}
    for status, n in (
        WorkflowExecution.objects.filter(workflow_name=workflow_name)
        .values_list("status")
        .annotate(n=Count("id"))
    ):
        if status == ExecutionStatus.COMPLETED:
            tally["completed"] += n
        elif status in unfinished:
            tally["unfinished"] += n
        else:
            tally["failed"] += n
    return tally


def run_batch(
    args: argparse.Namespace, workflow: Any, n: int, concurrency: int, label: str
) -> dict[str, Any]:
    """Make `n` ready `workflow`s and run them on one worker at `concurrency`, sampled."""
    make_ready(workflow, n, f"bench-{label}-", {"n": 0})
    with Workers(args.database_url, concurrency, args.poll_interval) as workers:
        workers.start(1, label, worker_command(concurrency, QUEUE))
        sampler = Sampler(workers.processes[0].pid, args.database_url).start()
        try:
            stopped = wait_until(lambda: finished(workflow.name) >= n, workers, args.io_timeout)
        finally:
            sampler.stop()
        too_many = log_says_too_many_clients(log_text(workers))
    steps, seconds = completed_steps(workflow.name)
    return {
        "workflows": n,
        **outcomes(workflow.name),
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds if seconds else 0.0,
        "peak_connections": sampler.peak_connections,
        "peak_rss_mb": sampler.peak_rss_mb,
        "too_many_clients": too_many,
        "stopped": stopped,
    }


def run_concurrency(args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    from bench.core_workflows import ThreeSleeps
    from bench.run_workflows import ThreeNoOps

    noop = run_batch(
        args, ThreeNoOps, args.io_noop_workflows, concurrency, f"io-noop-{concurrency}"
    )
    bound = min(concurrency / STEP_SECONDS, noop["steps_per_s"])
    print(
        f"[io C={concurrency}] no-op: {noop['steps_per_s']:,.0f} steps/s; "
        f"bound {bound:,.0f} steps/s",
        flush=True,
    )
    n = max(1, math.ceil(bound * args.io_seconds / STEPS))
    row = run_batch(args, ThreeSleeps, n, concurrency, f"io-{concurrency}")
    row.update(
        system="Durable",
        concurrency=concurrency,
        noop_steps_per_s=noop["steps_per_s"],
        bound=bound,
        percent_of_bound=100 * row["steps_per_s"] / bound if bound else 0.0,
    )
    print(
        f"[io C={concurrency}] {row['completed']:,}/{n:,} done, {row['failed']} failed: "
        f"{row['steps_per_s']:,.0f} steps/s ({row['percent_of_bound']:.0f}% of the bound), "
        f"{row['peak_connections']} connections, {row['peak_rss_mb']:.0f} MB"
        + (f"; {row['stopped']}" if row["stopped"] else ""),
        flush=True,
    )
    return row


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [run_concurrency(args, c) for c in args.io_concurrency]
