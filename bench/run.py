"""Throughput, latency and worker memory of Durable on PostgreSQL (no peers measured yet).

    .venv/bin/python bench/run.py [--workflows 5000] [--concurrency 8] [--probes 200]

Creates (drops first) the PostgreSQL database named in --database-url, migrates it, then:

1. Throughput: starts N workflows of three no-op steps with `durable.start()` in a loop
   (timed on its own), then starts real `manage.py durable_worker --concurrency C
   --no-scheduler` processes and waits until all N have completed: one round with 1 worker,
   one with 2, each on a fresh set (the tables are emptied between rounds). Steps/s and
   workflows/s are measured in the database, from the first StepExecution.started_at to the
   last StepExecution.completed_at of the batch. The RSS of each worker (VmRSS in
   /proc/<pid>/status) is read once its round has completed.
2. Latency, idle worker: with one worker running and nothing else to do, starts probe
   workflows (the same three no-op steps) one at a time, each after the previous one has
   completed plus a short pause, so the worker is idle and is woken by LISTEN/NOTIFY.
   start -> first step is the first step's started_at minus the execution's created_at;
   step -> next step is a step's started_at minus the previous step's completed_at.
3. Latency under load: the same probes, started every --probe-interval seconds while a
   1-worker batch of --load-workflows (default 1,000) runs, without waiting for each to
   complete. Tasks are claimed by priority, then due time, so a probe queues behind the
   batch's tasks already due.

Worker logs go to var/bench-run-worker-<round>-<n>.log.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_MODULE = "bench.run_workflows"
STEPS = ("first", "second", "third")
READY_LINE = "serving"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=5_000, help="throughput batch size")
    parser.add_argument(
        "--load-workflows", type=int, default=1_000, help="batch the under-load probes run beside"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--probes", type=int, default=200, help="latency probes per scenario")
    parser.add_argument(
        "--probe-pause", type=float, default=0.1, help="idle: pause after each probe completes"
    )
    parser.add_argument(
        "--probe-interval", type=float, default=0.05, help="under load: seconds between probes"
    )
    parser.add_argument("--poll-interval", default="0.05", help="DURABLE_POLL_INTERVAL")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/durable_bench_run",
        help="PostgreSQL database to (re)create for the run",
    )
    return parser.parse_args(argv)


# -- setup ---------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


def empty_tables() -> None:
    """Drop every execution, attempt and task, so the next round starts on empty tables."""
    from django.db import connection

    from durable.models import Task, WorkflowExecution

    tables = [WorkflowExecution._meta.db_table, Task._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        cursor.execute("VACUUM ANALYZE")


# -- workers -------------------------------------------------------------------------------


def worker_command(concurrency: int) -> list[str]:
    return [
        sys.executable,
        str(REPO / "manage.py"),
        "durable_worker",
        "--concurrency",
        str(concurrency),
        "--no-scheduler",
    ]


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        # As in production: the test project's DEBUG default logs every query in memory.
        "DJANGO_DEBUG": "0",
        "DURABLE_POLL_INTERVAL": args.poll_interval,
        "DURABLE_WORKFLOW_MODULES": WORKFLOW_MODULE,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Workers:
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, count: int, label: str, args: argparse.Namespace) -> None:
        for n in range(count):
            log = REPO / "var" / f"bench-run-worker-{label}-{n}.log"
            log.parent.mkdir(exist_ok=True)
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        worker_command(args.concurrency),
                        cwd=REPO,
                        env=worker_env(args),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            self.logs.append(log)
        deadline = time.monotonic() + 60
        for process, log in zip(self.processes, self.logs, strict=True):
            while READY_LINE not in log.read_text(errors="replace"):
                self.check_alive()
                if time.monotonic() > deadline:
                    sys.exit(f"worker {process.pid} not ready after 60s; see {log}")
                time.sleep(0.05)

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                sys.exit(f"worker {process.pid} exited ({process.returncode}); see {log}")

    def rss_mb(self) -> list[float]:
        return [vm_rss_kb(p.pid) / 1024 for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()
        self.logs.clear()


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- measuring -----------------------------------------------------------------------------


def start_batch(n: int) -> tuple[list[str], float]:
    import durable
    from bench.run_workflows import ThreeNoOps

    began = time.perf_counter()
    ids = [durable.start(ThreeNoOps, {"n": i}) for i in range(n)]
    return ids, time.perf_counter() - began


def finished(workflow_name: str) -> int:
    from durable.models import WorkflowExecution

    return WorkflowExecution.objects.filter(
        workflow_name=workflow_name, completed_at__isnull=False
    ).count()


def check_all_completed(workflow_name: str) -> None:
    from durable.models import ExecutionStatus, WorkflowExecution

    other = (
        WorkflowExecution.objects.filter(workflow_name=workflow_name)
        .exclude(status=ExecutionStatus.COMPLETED)
        .count()
    )
    if other:
        sys.exit(f"{other} {workflow_name} executions did not complete")


def wait_finished(workflow_name: str, n: int, workers: Workers, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while finished(workflow_name) < n:
        workers.check_alive()
        if time.monotonic() > deadline:
            sys.exit(f"only {finished(workflow_name)}/{n} {workflow_name} done after {timeout}s")
        time.sleep(0.1)
    check_all_completed(workflow_name)


@dataclass
class Throughput:
    workers: int
    workflows: int
    steps: int
    seconds: float
    start_seconds: float
    rss_mb: list[float]


def measure_throughput(workflow_name: str) -> tuple[int, int, float]:
    """(workflows, steps, seconds from the first step start to the last step completion)."""
    from django.db.models import Max, Min

    from durable.models import StepExecution

    steps = StepExecution.objects.filter(execution__workflow_name=workflow_name)
    span = steps.aggregate(first=Min("started_at"), last=Max("completed_at"))
    workflows = steps.values("execution_id").distinct().count()
    seconds = (span["last"] - span["first"]).total_seconds()
    return workflows, steps.count(), seconds


def latencies(workflow_name: str) -> tuple[list[float], list[float]]:
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
    return to_first, to_next


def ms(delta: Any) -> float:
    return float(delta.total_seconds() * 1000)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def probe_idle(args: argparse.Namespace, workers: Workers) -> None:
    import durable
    from bench.run_workflows import LatencyProbe
    from durable.models import WorkflowExecution

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


def probe_under_load(args: argparse.Namespace, batch: int, workers: Workers) -> int:
    """Start probes every `probe_interval` s while the batch runs; returns how many."""
    import durable
    from bench.run_workflows import LatencyProbe, ThreeNoOps

    started = 0
    while started < args.probes and finished(ThreeNoOps.name) < batch:
        workers.check_alive()
        durable.start(LatencyProbe, {"n": started})
        started += 1
        time.sleep(args.probe_interval)
    return started


# -- the run -------------------------------------------------------------------------------


def throughput_round(
    args: argparse.Namespace, count: int, label: str, *, probes: bool = False
) -> tuple[Throughput, int]:
    from bench.run_workflows import LatencyProbe, ThreeNoOps

    batch = args.load_workflows if probes else args.workflows
    empty_tables()
    _, start_seconds = start_batch(batch)
    print(
        f"[{label}] started {batch:,} workflows with durable.start() in "
        f"{start_seconds:.1f}s ({batch / start_seconds:,.0f}/s); "
        f"starting {count} worker(s)"
    )
    workers = Workers()
    try:
        workers.start(count, label, args)
        sent = probe_under_load(args, batch, workers) if probes else 0
        timeout = max(300.0, batch / 10)
        wait_finished(ThreeNoOps.name, batch, workers, timeout)
        if probes:
            wait_finished(LatencyProbe.name, sent, workers, timeout)
        rss = workers.rss_mb()
    finally:
        workers.stop()
    workflows, steps, seconds = measure_throughput(ThreeNoOps.name)
    print(f"[{label}] {steps:,} steps in {seconds:.2f}s; worker RSS {fmt_mb(rss)}")
    return Throughput(count, workflows, steps, seconds, start_seconds, rss), sent


def fmt_mb(values: list[float]) -> str:
    return " + ".join(f"{v:.0f} MB" for v in values)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("this benchmark needs PostgreSQL (--database-url postgres://...)")
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["DURABLE_WORKFLOW_MODULES"] = WORKFLOW_MODULE
    sys.path.insert(0, str(REPO))
    recreate_database(args.database_url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from bench.run_workflows import LatencyProbe

    command = "bench/run.py " + shlex.join(argv) if argv else "bench/run.py"
    print(f"command: .venv/bin/python {command}")
    print(
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"PostgreSQL {postgres_version()}"
    )
    print(
        f"workers: {shlex.join(worker_command(args.concurrency)[1:])} with "
        f"DURABLE_POLL_INTERVAL={args.poll_interval}; database {args.database_url} (recreated)"
    )

    rounds = [throughput_round(args, 1, "1-worker")[0], throughput_round(args, 2, "2-workers")[0]]

    empty_tables()
    workers = Workers()
    try:
        workers.start(1, "idle", args)
        time.sleep(1)
        probe_idle(args, workers)
    finally:
        workers.stop()
    idle = latencies(LatencyProbe.name)
    print(f"[idle] {len(idle[0])} probes done")

    loaded_round, sent = throughput_round(args, 1, "load", probes=True)
    loaded = latencies(LatencyProbe.name)
    print(f"[load] {sent} probes done")

    print()
    print(
        f"Throughput: {args.workflows:,} workflows x 3 no-op steps, all started before the "
        f"workers, --concurrency {args.concurrency} per worker"
    )
    print()
    print("| workers | steps/s | workflows/s | first step -> last completion | worker RSS |")
    print("|---|---|---|---|---|")
    for r in rounds:
        print(
            f"| {r.workers} | {r.steps / r.seconds:,.0f} | {r.workflows / r.seconds:,.0f} "
            f"| {r.seconds:.1f} s | {fmt_mb(r.rss_mb)} |"
        )
    starts = [r.start_seconds for r in rounds]
    print()
    print(
        f"durable.start() in a loop, one process: {args.workflows:,} in "
        + " and ".join(f"{s:.1f} s" for s in starts)
        + f" ({args.workflows / statistics.mean(starts):,.0f}/s)"
    )
    print()
    print("Latency (ms), 1 worker")
    print()
    print("| scenario | probes | measure | p50 | p95 | p99 |")
    print("|---|---|---|---|---|---|")
    scenarios = [
        ("idle (woken by NOTIFY)", idle),
        (f"under load ({args.load_workflows:,}-workflow batch)", loaded),
    ]
    for scenario, (to_first, to_next) in scenarios:
        for measure, values in (
            ("start -> first step", to_first),
            ("step -> next step", to_next),
        ):
            p50, p95, p99 = percentiles(values)
            print(
                f"| {scenario} | {len(to_first)} | {measure} | {p50:,.1f} | {p95:,.1f} "
                f"| {p99:,.1f} |"
            )
    print()
    print(
        f"(the loaded round ran its batch at "
        f"{loaded_round.steps / loaded_round.seconds:,.0f} steps/s, probes not counted; "
        f"worker RSS {fmt_mb(loaded_round.rss_mb)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
