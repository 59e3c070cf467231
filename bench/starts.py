"""The starts scenario: start() latency and the bulk-start rate, with no worker running.

- `durable.start(OneNoOp, {"n": i})` called --starts-calls times in a row (2,000), each
  timed on its own: p50/p95/p99 in ms, and starts/s over their sum.
- `durable.start_many(OneNoOp, inputs)` once, for --starts-bulk inputs (10k): workflows/s
  of that one call, checked against the ids it returns and the rows it made. A build
  without start_many gets a row saying so: it is never replaced by a loop of start().

The workflow is one no-op step (bench/core_workflows.py); tables are emptied before each.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.support import empty_tables, percentiles


def start_latency(calls: int) -> dict[str, Any]:
    import durable
    from bench.core_workflows import OneNoOp

    empty_tables()
    samples = []
    for i in range(calls):
        began = time.perf_counter()
        durable.start(OneNoOp, {"n": i})
        samples.append(1000 * (time.perf_counter() - began))
    p50, p95, p99 = percentiles(samples)
    print(f"[starts] start() x{calls:,}: p50 {p50:.2f} ms, p95 {p95:.2f}, p99 {p99:.2f}")
    return {
        "system": "Durable",
        "call": "start()",
        "n": calls,
        "samples_ms": samples,
        "per_s": calls / (sum(samples) / 1000),
    }


def start_many_rate(size: int) -> dict[str, Any]:
    import durable
    from bench.core_workflows import OneNoOp
    from durable.models import WorkflowExecution

    row: dict[str, Any] = {"system": "Durable", "call": "start_many()", "n": size}
    start_many = getattr(durable, "start_many", None)
    if start_many is None:
        print("[starts] durable.start_many is not available on this build", flush=True)
        return {**row, "error": "durable.start_many is not available on this build"}
    empty_tables()
    inputs = [{"n": i} for i in range(size)]
    began = time.perf_counter()
    ids = start_many(OneNoOp, inputs)
    seconds = time.perf_counter() - began
    made = WorkflowExecution.objects.filter(workflow_name=OneNoOp.name).count()
    if len(set(ids)) != size or made != size:
        problem = f"start_many returned {len(set(ids)):,} distinct ids and made {made:,} rows"
        print(f"[starts] {problem}, for {size:,} inputs", flush=True)
        return {**row, "error": f"{problem} for {size:,} inputs"}
    print(f"[starts] start_many({size:,}): {seconds:.2f}s, {size / seconds:,.0f}/s", flush=True)
    return {**row, "seconds": seconds, "per_s": size / seconds}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return [start_latency(args.starts_calls), start_many_rate(args.starts_bulk)]
