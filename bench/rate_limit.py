"""Rate limits held by real workers over a minute: achieved start rate vs the limit.

    .venv/bin/python bench/rate_limit.py [--rate 300/m] [--scope workflow|queue]
        [--seconds 60] [--workers 2] [--concurrency 4]

Recreates the PostgreSQL database named in --database-url, starts the worker processes,
then starts enough one-step workflows to keep the limit busy for --seconds plus a margin
(a workflow `rate_limit`, or a queue's `rate_limit` in DURABLE["QUEUES"] with
--scope queue). Starts are counted in the database (StepExecution.started_at) over
--seconds from the first one; the run passes when the achieved rate is within 10% of the
limit. The busiest 1-second window is printed too (slots are spaced evenly; starts a
worker picked up late can bunch behind each other).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.run import recreate_database  # noqa: E402

READY_LINE = "serving"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", default="300/m", help="the limit, e.g. 300/m or 10/s")
    parser.add_argument("--starters", type=int, default=4, help="threads calling start()")
    parser.add_argument("--scope", choices=["workflow", "queue"], default="workflow")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker")
    parser.add_argument("--poll-interval", default="0.1", help="DURABLE_POLL_INTERVAL")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/durable_bench_rate",
        help="PostgreSQL database to (re)create for the run",
    )
    return parser.parse_args(argv)


def start_workers(args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    processes = []
    logs = []
    for n in range(args.workers):
        log = REPO / "var" / f"bench-rate-worker-{n}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(REPO / "manage.py"),
                        "durable_worker",
                        "--concurrency",
                        str(args.concurrency),
                        "--no-scheduler",
                    ],
                    cwd=REPO,
                    env={**os.environ, "DURABLE_POLL_INTERVAL": args.poll_interval},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(log)
    deadline = time.monotonic() + 60
    for process, log in zip(processes, logs, strict=True):
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker {process.pid} did not start; see {log}")
            time.sleep(0.05)
    return processes


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def start_many(start: Any, workflow: Any, numbers: range) -> None:
    from django.db import connection

    try:
        for n in numbers:
            start(workflow, {"n": n})
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DURABLE_WORKFLOW_MODULES"] = "bench.rate_limit_workflows"
    os.environ["PYTHONPATH"] = str(REPO)
    # Both limits are read from the environment, by this process and by its workers.
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.rate_limit_settings"
    os.environ["BENCH_QUEUE_RATE"] = args.rate
    os.environ["BENCH_WORKFLOW_RATE"] = args.rate
    recreate_database(args.database_url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import durable
    from bench.rate_limit_workflows import QueuePacedCall, RateLimitedCall
    from durable.dsl.limits import parse_rate
    from durable.models import StepExecution

    rate = parse_rate(args.rate)
    per_second = rate.count / rate.period
    workflow = QueuePacedCall if args.scope == "queue" else RateLimitedCall
    # A backlog for the whole window and then some: the limit, not the supply, sets the pace.
    total = int(per_second * args.seconds * 1.2) + 10
    print(f"command: .venv/bin/python bench/rate_limit.py {shlex.join(argv)}".rstrip())
    print(
        f"limit {rate.text} on the {args.scope} ({per_second:.2f}/s); {total} one-step "
        f"workflows; {args.workers} workers x {args.concurrency} threads"
    )
    workers = start_workers(args)
    try:
        began = time.monotonic()
        # Several starting threads, so the supply of starts outruns the limit being measured.
        with ThreadPoolExecutor(args.starters) as pool:
            chunks = [range(i, total, args.starters) for i in range(args.starters)]
            for done in [pool.submit(start_many, durable.start, workflow, c) for c in chunks]:
                done.result()
        print(f"started {total} workflows in {time.monotonic() - began:.1f} s")
        first = None
        while first is None:
            first = (
                StepExecution.objects.order_by("started_at")
                .values_list("started_at", flat=True)
                .first()
            )
            time.sleep(0.2)
        window_end = first + timedelta(seconds=args.seconds)
        print(f"measuring {args.seconds:.0f} s from the first start ...")
        while StepExecution.objects.filter(started_at__gte=window_end).count() == 0:
            time.sleep(1)
            if time.monotonic() - began > args.seconds * 3 + 60:
                sys.exit("the workers fell behind: no start after the window; see var/")
    finally:
        stop_workers(workers)

    starts = sorted(
        StepExecution.objects.filter(started_at__lt=window_end).values_list("started_at", flat=True)
    )
    achieved = len(starts) / args.seconds
    deviation = (achieved - per_second) / per_second
    second = timedelta(seconds=1)
    busiest = max(sum(1 for u in starts if t <= u < t + second) for t in starts)
    print()
    print("| limit | window | starts | achieved | deviation | busiest 1 s |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {rate.text} ({per_second:.2f}/s) | {args.seconds:.0f} s | {len(starts)} "
        f"| {achieved:.2f}/s | {deviation:+.1%} | {busiest} |"
    )
    ok = abs(deviation) <= 0.10
    print(f"\n{'PASS' if ok else 'FAIL'}: achieved rate within 10% of the limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
