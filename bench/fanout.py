"""The fanout scenario: ONE workflow whose foreach has N one-step no-op items.

For each N of --fanout-sizes (10k, 100k) and each worker count of --fanout-workers (1):
the workers (`durable_worker --queues default --concurrency C --no-scheduler`) are started
and idle, then one WideForeach (bench/core_workflows.py) is started with n = N. Its time is
the execution's completed_at minus its created_at (stamped inside start()), items/s is N
over it. Each item appends its number to ctx["out"]; after completion the join's context
must be exactly list(range(N)) ("exact"). Each worker's peak RSS and PostgreSQL
connections are sampled every 100 ms (bench/peers/sampling.py).

A run still going after --fanout-timeout seconds is stopped and reported as "did not
finish (k of N done)", k counted from the completed item step attempts.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.peers.sampling import Sampler
from bench.support import Workers, empty_tables, wait_until, worker_command

QUEUE = "default"


def items_done(workflow_id: str) -> int:
    from durable.models import StepExecution, StepStatus

    return StepExecution.objects.filter(
        execution__workflow_id=workflow_id, step="item", status=StepStatus.COMPLETED
    ).count()


def run_size(args: argparse.Namespace, n: int, count: int) -> dict[str, Any]:
    import durable
    from bench.core_workflows import WideForeach
    from durable.models import WorkflowExecution

    label = f"fanout-{n}-{count}w"
    empty_tables()
    with Workers(args.database_url, args.concurrency, args.poll_interval) as workers:
        workers.start(count, label, worker_command(args.concurrency, QUEUE))
        samplers = [Sampler(p.pid, args.database_url).start() for p in workers.processes]
        try:
            wid = durable.start(WideForeach, {"n": n})
            execution = WorkflowExecution.objects.filter(workflow_id=wid)
            stopped = wait_until(
                lambda: execution.filter(completed_at__isnull=False).exists(),
                workers,
                args.fanout_timeout,
            )
        finally:
            for sampler in samplers:
                sampler.stop()
    row: dict[str, Any] = {
        "system": "Durable",
        "items": n,
        "workers": count,
        "peak_rss_mb": [s.peak_rss_mb for s in samplers],
        "peak_connections": [s.peak_connections for s in samplers],
        "stopped": stopped,
    }
    done = execution.get()
    if stopped or done.completed_at is None:
        row.update(done=items_done(wid), seconds=None, items_per_s=None, exact=None)
        print(f"[{label}] did not finish ({row['done']:,} of {n:,} done): {stopped}", flush=True)
        return row
    seconds = (done.completed_at - done.created_at).total_seconds()
    row.update(
        status=done.status,
        done=items_done(wid),
        seconds=seconds,
        items_per_s=n / seconds,
        exact=(done.context or {}).get("out") == list(range(n)),
    )
    print(
        f"[{label}] {done.status} in {seconds:.1f}s ({n / seconds:,.0f} items/s), "
        f"join exact: {row['exact']}, RSS {' + '.join(f'{x:.0f}' for x in row['peak_rss_mb'])} MB",
        flush=True,
    )
    return row


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [run_size(args, n, count) for n in args.fanout_sizes for count in args.fanout_workers]
