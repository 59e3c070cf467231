"""Durable's throughput and latency rounds (the rows the peers are compared with).

Throughput: N workflows of three no-op steps (bench/run_workflows.py) are started with
`durable.start()` in a loop (timed on its own), then real `manage.py durable_worker
--concurrency C --no-scheduler` processes run them; steps/s and workflows/s are measured in
the database, from the first StepExecution.started_at to the last completed_at of the batch.

Latency, idle: with one worker running and nothing else to do, probe workflows (the same
three no-op steps) are started one at a time, each after the previous one has completed
plus a pause, so the worker is idle and is woken by LISTEN/NOTIFY. start -> first step is
the first step's started_at minus the execution's created_at (stamped inside start());
step -> next step is a step's started_at minus the previous step's completed_at.

Latency, under load: the same probes, started every --probe-interval seconds while a
1-worker batch of --load-workflows runs. Tasks are claimed by priority, then due time, so a
probe queues behind the batch's tasks already due: the figure is the backlog, not the wake-up.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from bench.support import REPO, Workers, empty_tables, settle_tables, worker_env

STEPS = ("first", "second", "third")


def start_batch(n: int) -> float:
    import durable
    from bench.run_workflows import ThreeNoOps

    began = time.perf_counter()
    for i in range(n):
        durable.start(ThreeNoOps, {"n": i})
    return time.perf_counter() - began


def start_batch_in_process(args: argparse.Namespace, n: int, env: dict[str, str]) -> float:
    """start_batch in a fresh process that sees `env` (bench/start_batch.py)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "start_batch.py"), str(n)],
        cwd=REPO,
        env=worker_env(args.database_url, args.poll_interval, env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench/start_batch.py failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def finished(workflow_name: str) -> int:
    from durable.models import WorkflowExecution

    return WorkflowExecution.objects.filter(
        workflow_name=workflow_name, completed_at__isnull=False
    ).count()


def wait_finished(workflow_name: str, n: int, workers: Workers, timeout: float) -> None:
    from durable.models import ExecutionStatus, WorkflowExecution

    deadline = time.monotonic() + timeout
    while finished(workflow_name) < n:
        workers.check_alive()
        if time.monotonic() > deadline:
            sys.exit(f"only {finished(workflow_name)}/{n} {workflow_name} done after {timeout}s")
        time.sleep(0.1)
    other = (
        WorkflowExecution.objects.filter(workflow_name=workflow_name)
        .exclude(status=ExecutionStatus.COMPLETED)
        .count()
    )
    if other:
        sys.exit(f"{other} {workflow_name} executions did not complete")


def step_span(workflow_name: str) -> tuple[int, int, float]:
    """(workflows, steps, seconds from the first step start to the last step completion)."""
    from django.db.models import Max, Min

    from durable.models import StepExecution

    steps = StepExecution.objects.filter(execution__workflow_name=workflow_name)
    span = steps.aggregate(first=Min("started_at"), last=Max("completed_at"))
    workflows = steps.values("execution_id").distinct().count()
    return workflows, steps.count(), (span["last"] - span["first"]).total_seconds()


def latencies(workflow_name: str) -> dict[str, list[float]]:
    """Milliseconds (start -> first step, step -> next step) over every probe execution."""
    from durable.models import StepExecution, WorkflowExecution

    created = dict(
        WorkflowExecution.objects.filter(workflow_name=workflow_name).values_list(
            "pk", "created_at"
        )
    )
    rows: dict[int, dict[str, tuple[datetime, datetime]]] = {}
    for pk, name, started, completed in StepExecution.objects.filter(
        execution__workflow_name=workflow_name, kind="step", attempt=1
    ).values_list("execution_id", "step", "started_at", "completed_at"):
        rows.setdefault(pk, {})[name] = (started, completed)
    to_first, to_next = [], []
    for pk, steps in rows.items():
        to_first.append(ms(steps[STEPS[0]][0] - created[pk]))
        for previous, following in itertools.pairwise(STEPS):
            to_next.append(ms(steps[following][0] - steps[previous][1]))
    return {"start_to_first_ms": to_first, "step_to_next_ms": to_next}


def ms(delta: Any) -> float:
    return float(delta.total_seconds() * 1000)


def workers_for(
    args: argparse.Namespace, env: dict[str, str] | None = None, metrics_port: int | None = None
) -> Workers:
    return Workers(
        args.database_url,
        args.concurrency,
        args.poll_interval,
        env or {},
        metrics_port=metrics_port,
    )


def throughput_round(
    args: argparse.Namespace, count: int, label: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One batch of --workflows run by `count` workers; `env` reaches workers and starter."""
    from bench.run_workflows import ThreeNoOps

    n = args.workflows
    empty_tables()
    start_seconds = start_batch_in_process(args, n, env) if env else start_batch(n)
    print(f"[{label}] started {n:,} with durable.start() in {start_seconds:.1f}s", flush=True)
    settle_tables()
    with workers_for(args, env) as workers:
        workers.start(count, label)
        wait_finished(ThreeNoOps.name, n, workers, max(600.0, n / 5))
        rss = workers.rss_mb()
    workflows, steps, seconds = step_span(ThreeNoOps.name)
    print(f"[{label}] {steps:,} steps in {seconds:.2f}s ({steps / seconds:,.0f}/s)", flush=True)
    return {
        "workers": count,
        "workflows": workflows,
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "workflows_per_s": workflows / seconds,
        "start_seconds": start_seconds,
        "rss_mb": rss,
    }


def latency_idle(args: argparse.Namespace) -> dict[str, list[float]]:
    import durable
    from bench.run_workflows import LatencyProbe
    from durable.models import WorkflowExecution

    empty_tables()
    with workers_for(args) as workers:
        workers.start(1, "idle")
        time.sleep(1)
        for i in range(args.probes):
            wid = durable.start(LatencyProbe, {"n": i})
            deadline = time.monotonic() + 30
            while not WorkflowExecution.objects.filter(
                workflow_id=wid, completed_at__isnull=False
            ).exists():
                workers.check_alive()
                if time.monotonic() > deadline:
                    sys.exit(f"probe {wid} did not finish within 30s")
                time.sleep(0.005)
            time.sleep(args.probe_pause)
    print(f"[idle] {args.probes} probes done", flush=True)
    return latencies(LatencyProbe.name)


def latency_loaded(args: argparse.Namespace) -> dict[str, list[float]]:
    import durable
    from bench.run_workflows import LatencyProbe, ThreeNoOps

    n = args.load_workflows
    empty_tables()
    start_batch(n)
    with workers_for(args) as workers:
        workers.start(1, "load")
        sent = 0
        while sent < args.probes and finished(ThreeNoOps.name) < n:
            workers.check_alive()
            durable.start(LatencyProbe, {"n": sent})
            sent += 1
            time.sleep(args.probe_interval)
        wait_finished(ThreeNoOps.name, n, workers, max(600.0, n / 5))
        wait_finished(LatencyProbe.name, sent, workers, 300)
    print(f"[load] {sent} probes done", flush=True)
    return latencies(LatencyProbe.name)
