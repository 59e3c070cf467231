"""Scale: claim latency and steps/s with 10k, 1M and 5M finished executions in the tables.

One three-no-op workflow is run to completion by a real worker; its execution row and its
three step attempts are then copied in SQL (bench/clone.py) until the tables hold each size
of finished executions (cumulatively: 10k, then up to 1M, then up to 5M). At each size:

- claim latency: --scale-claims ready workflows (started with `durable.start()`, copied)
  sit in the queue; the claim a worker makes (`store.claims.claim_tasks(queue,
  concurrency)`) is timed from this process until the queue is drained (each call claims
  up to C tasks); then one claim that finds nothing (an idle worker's poll). The claimed
  probes are deleted afterwards, never run.
- steps/s: --scale-workflows ready workflows (copied the same way) run by one worker,
  first step start to last step completion as in the throughput rows; deleted afterwards.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.clone import clone_execution
from bench.support import Workers, empty_tables, percentiles
from bench.throughput import step_span, wait_finished


def timed_claim(limit: int) -> tuple[float, int]:
    """Milliseconds of one claim of up to `limit` tasks from "default", and how many."""
    from durable.store import claims

    began = time.perf_counter()
    claimed = claims.claim_tasks(
        "default", limit, worker_id="bench-claim", lease_seconds=300, using="default"
    )
    return 1000 * (time.perf_counter() - began), len(claimed)


def ready_copies(workflow: Any, count: int, prefix: str) -> None:
    import durable
    from durable.models import WorkflowExecution

    wid = durable.start(workflow, {"n": 0})
    clone_execution(WorkflowExecution.objects.get(workflow_id=wid).pk, count - 1, prefix)


def delete(workflow_name: str) -> None:
    from durable.models import WorkflowExecution

    WorkflowExecution.objects.filter(workflow_name=workflow_name).delete()


def finished_template(args: argparse.Namespace) -> int:
    import durable
    from bench.run_workflows import Finished
    from durable.models import WorkflowExecution

    wid = durable.start(Finished, {"n": 0})
    with Workers(args.database_url, args.concurrency, args.poll_interval) as workers:
        workers.start(1, "scale-template")
        wait_finished(Finished.name, 1, workers, 60)
    return int(WorkflowExecution.objects.get(workflow_id=wid).pk)


def measure_level(args: argparse.Namespace, size: int) -> dict[str, Any]:
    from bench.run_workflows import ClaimProbe, ThreeNoOps

    ready_copies(ClaimProbe, args.scale_claims, "bench-claim-")
    timings = []
    while True:
        elapsed, claimed = timed_claim(args.concurrency)
        if not claimed:
            break
        timings.append(elapsed)
    empty_claims = [timed_claim(args.concurrency)[0] for _ in range(20)]
    delete(ClaimProbe.name)

    ready_copies(ThreeNoOps, args.scale_workflows, "bench-scale-")
    with Workers(args.database_url, args.concurrency, args.poll_interval) as workers:
        workers.start(1, f"scale-{size}")
        wait_finished(ThreeNoOps.name, args.scale_workflows, workers, 900)
    workflows, steps, seconds = step_span(ThreeNoOps.name)
    delete(ThreeNoOps.name)
    p50, p95, p99 = percentiles(timings)
    result = {
        "finished_executions": size,
        "claim_ms": {"p50": p50, "p95": p95, "p99": p99, "calls": len(timings)},
        "empty_claim_ms_p50": percentiles(empty_claims)[0],
        "steps_per_s": steps / seconds,
        "workflows_per_s": workflows / seconds,
    }
    print(
        f"[scale {size:,}] claim p50 {p50:.2f} ms p99 {p99:.2f} ms; "
        f"empty claim {result['empty_claim_ms_p50']:.2f} ms; {steps / seconds:,.0f} steps/s",
        flush=True,
    )
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from durable.models import WorkflowExecution

    empty_tables()
    template = finished_template(args)
    have = 1
    levels = []
    for size in sorted(args.scale_sizes):
        began = time.monotonic()
        clone_execution(template, size - have, "bench-finished-", first=have)
        have = size
        print(
            f"[scale] {WorkflowExecution.objects.count():,} finished executions "
            f"(filled in {time.monotonic() - began:.0f}s)",
            flush=True,
        )
        levels.append(measure_level(args, size))
    return {"levels": levels}
