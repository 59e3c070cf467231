"""Worker memory: the RSS of one worker after 10,000 and after 200,000 steps.

Enough ready three-no-op workflows for the larger count are made at once (one started with
`durable.start()`, copied in SQL by bench/clone.py, so making them does not take minutes),
then one `durable_worker --concurrency C` runs them. Its VmRSS (/proc/<pid>/status) is read
at the first check (every 0.2 s) after each count of completed step attempts is reached;
the step count at that moment is reported with it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.clone import clone_execution
from bench.support import Workers, empty_tables, vm_rss_kb


def completed_steps() -> int:
    from durable.models import StepExecution

    return StepExecution.objects.filter(completed_at__isnull=False).count()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import durable
    from bench.run_workflows import ThreeNoOps
    from durable.models import WorkflowExecution

    marks = sorted(args.memory_steps)
    empty_tables()
    wid = durable.start(ThreeNoOps, {"n": 0})
    template = WorkflowExecution.objects.get(workflow_id=wid).pk
    workflows = marks[-1] // 3 + 1
    clone_execution(template, workflows - 1, "bench-memory-")
    print(f"[memory] {workflows:,} ready workflows made", flush=True)
    samples = []
    began = time.monotonic()
    with Workers(args.database_url, args.concurrency, args.poll_interval) as workers:
        workers.start(1, "memory")
        samples.append({"steps": 0, "rss_mb": vm_rss_kb(workers.processes[0].pid) / 1024})
        for mark in marks:
            while (steps := completed_steps()) < mark:
                workers.check_alive()
                if time.monotonic() - began > max(900.0, mark / 20):
                    sys.exit(f"[memory] only {steps:,} steps done")
                time.sleep(0.2)
            rss = vm_rss_kb(workers.processes[0].pid) / 1024
            samples.append({"steps": steps, "rss_mb": rss})
            print(f"[memory] after {steps:,} steps: worker RSS {rss:.1f} MB", flush=True)
    return {"samples": samples}
