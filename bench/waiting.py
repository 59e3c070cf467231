"""What 100,000 waiting workflows cost an idle worker, and how fast one event wakes one.

    .venv/bin/python bench/run.py --only waiting        # as part of the suite
    .venv/bin/python bench/waiting.py --workflows 100000   # alone, with the statement list

Starts one workflow whose first step waits for an event, lets one real `durable_worker`
process (`--queues default`, so one queue as in a default install) park it, copies the
parked execution with all its rows N-1 times in SQL (bench/clone.py: starting 100,000 with
`durable.start()` would take minutes), restarts the worker, lets it settle, then lets it
idle for --idle-seconds and measures:

- CPU: utime+stime of the worker process from /proc/<pid>/stat, before and after.
- Queries: every SQL statement the worker's Django connections execute, counted by an
  execute wrapper installed in the worker process (the LISTEN connection is not Django's
  and only waits). As a server-side cross-check, the transactions committed in the
  database (pg_stat_database.xact_commit, read from another database so reading does not
  count) over the same window.

Finally it sends one event to one of the N waiting workflows, several times, and reports
the time from `send_event` returning to the execution being `completed`. The worker's log
is var/bench-waiting-worker.log.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import (
    READY_LINE,
    REPO,
    VAR,
    WORKFLOW_MODULES,
    committed_transactions,
    cpu_seconds,
    setup_django,
)

POLL_INTERVAL = "1.0"  # Durable's own default: the idle cost a default install pays


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--wakeups", type=int, default=5, help="events sent, one at a time")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/durable_bench_waiting",
        help="PostgreSQL database to (re)create for the run",
    )
    # Internal: run as the worker process, counting the SQL statements it executes.
    parser.add_argument("--count-queries-into", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the worker process -------------------------------------------------------------------


def run_counting_worker(counts_file: Path) -> None:
    """`manage.py durable_worker --queues default`, with every SQL statement counted."""
    import django
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    django.setup()
    lock = threading.Lock()
    counts: collections.Counter[str] = collections.Counter()

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with lock:
            counts[statement_kind(sql)] += 1
        return execute(sql, params, many, context)

    def instrument(sender: Any, connection: Any, **kwargs: Any) -> None:
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(instrument)

    def dump() -> None:
        while True:
            with lock:
                snapshot = dict(counts)
            counts_file.write_text(json.dumps(snapshot))
            time.sleep(0.2)

    threading.Thread(target=dump, daemon=True).start()
    call_command("durable_worker", queues="default", verbosity=1)


def statement_kind(sql: str) -> str:
    """A short label for a statement: its verb and the first table it names."""
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.IGNORECASE)
    return f"{verb} {table.group(1)}" if table else verb


# -- the benchmark ------------------------------------------------------------------------


def idle_poll_cost(rounds: int = 20) -> tuple[float, float]:
    """Mean milliseconds of an idle worker's two queries per poll: a claim that finds
    nothing, and the look-up of when the next parked task is due."""
    from durable.store import claims

    def mean_ms(call: Any) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        return 1000 * (time.perf_counter() - started) / rounds

    claim = mean_ms(
        lambda: claims.claim_tasks(
            "default", 8, worker_id="bench", lease_seconds=30, using="default"
        )
    )
    due = mean_ms(lambda: claims.next_due_at(["default"], using="default"))
    return claim, due


def wait_for(condition: Any, timeout: float, what: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            sys.exit(f"the worker exited ({worker.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(0.2)


def read_counts(path: Path) -> dict[str, int]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def start_worker(url: str, counts_file: Path) -> subprocess.Popen[bytes]:
    log = VAR / "bench-waiting-worker.log"
    VAR.mkdir(exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--database-url",
                url,
                "--count-queries-into",
                str(counts_file),
            ],
            cwd=REPO,
            env={
                **os.environ,
                "DURABLE_POLL_INTERVAL": POLL_INTERVAL,
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)


def run(url: str, workflows: int, idle_seconds: float, wakeups: int) -> dict[str, Any]:
    """The measurement on an already migrated database (this process set up for it)."""
    import durable
    from bench.clone import clone_execution
    from bench.support import empty_tables
    from bench.waiting_workflows import WaitForEvent
    from durable.models import ExecutionStatus, WorkflowExecution

    def count(status: str) -> int:
        return WorkflowExecution.objects.filter(status=status).count()

    empty_tables()
    counts_file = VAR / f"bench-waiting-queries-{os.getpid()}.json"
    template = durable.start(WaitForEvent, {"n": 0})
    worker = start_worker(url, counts_file)
    try:
        wait_for(lambda: count(ExecutionStatus.WAITING) == 1, 60, "the template to park", worker)
    finally:
        stop_worker(worker)
    began = time.monotonic()
    pk = WorkflowExecution.objects.get(workflow_id=template).pk
    clone_execution(pk, workflows - 1, "bench-waiting-")
    print(
        f"[waiting] {count(ExecutionStatus.WAITING):,} parked (copied in "
        f"{time.monotonic() - began:.0f}s)",
        flush=True,
    )
    ids = [template] + [f"bench-waiting-{n}" for n in range(1, workflows)]

    worker = start_worker(url, counts_file)
    try:
        wait_for(
            lambda: READY_LINE in (VAR / "bench-waiting-worker.log").read_text(errors="replace"),
            60,
            "the worker",
            worker,
        )
        time.sleep(5)  # start-up work (recovery sweep, LISTEN) is not the idle cost

        cpu_before, counts_before = cpu_seconds(worker.pid), read_counts(counts_file)
        xacts_before, wall_before = committed_transactions(url), time.monotonic()
        time.sleep(idle_seconds)
        cpu_after, counts_after = cpu_seconds(worker.pid), read_counts(counts_file)
        xacts_after, wall_after = committed_transactions(url), time.monotonic()
        idle = wall_after - wall_before
        statements = {
            kind: counts_after.get(kind, 0) - counts_before.get(kind, 0) for kind in counts_after
        }
        result: dict[str, Any] = {
            "waiting": count(ExecutionStatus.WAITING),
            "idle_seconds": idle,
            "cpu_percent": 100 * (cpu_after - cpu_before) / idle,
            "queries_per_s": sum(statements.values()) / idle,
            "transactions_per_s": (xacts_after - xacts_before) / idle,
            "statements": {k: n for k, n in statements.items() if n},
        }
        print(
            f"[waiting] idle worker: {result['cpu_percent']:.2f} % CPU, "
            f"{result['queries_per_s']:.2f} queries/s, "
            f"{result['transactions_per_s']:.2f} transactions/s",
            flush=True,
        )
        claim_ms, due_ms = idle_poll_cost()
        result["idle_poll_ms"] = {"claim": claim_ms, "next_due": due_ms}

        latencies = []
        for wid in ids[:: max(1, len(ids) // wakeups)][:wakeups]:
            sent = time.monotonic()
            durable.send_event(wid, "go", {"at": sent})
            deadline = sent + 30
            while durable.get_execution(wid).status != ExecutionStatus.COMPLETED:
                if time.monotonic() > deadline:
                    sys.exit(f"{wid} did not complete within 30s of its event")
                time.sleep(0.002)
            latencies.append(1000 * (time.monotonic() - sent))
            time.sleep(1.5)  # the worker goes idle again before the next event
        result["wakeup_ms"] = latencies
    finally:
        stop_worker(worker)
        counts_file.unlink(missing_ok=True)
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.count_queries_into:
        os.environ["DATABASE_URL"] = args.database_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
        os.environ["DURABLE_WORKFLOW_MODULES"] = WORKFLOW_MODULES
        run_counting_worker(Path(args.count_queries_into))
        return 0
    print(f"database: {args.database_url} (recreated)")
    setup_django(args.database_url)
    result = run(args.database_url, args.workflows, args.idle_seconds, args.wakeups)
    print()
    print("| workflows waiting | idle seconds | worker CPU | queries/s | transactions/s |")
    print("|---|---|---|---|---|")
    print(
        f"| {result['waiting']:,} | {result['idle_seconds']:.1f} "
        f"| {result['cpu_percent']:.2f} % | {result['queries_per_s']:.2f} "
        f"| {result['transactions_per_s']:.2f} |"
    )
    print()
    print("statements the idle worker ran (verb + first table):")
    for kind, n in sorted(result["statements"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:6d}  {kind}")
    poll = result["idle_poll_ms"]
    print(
        f"database time of the queries of one idle poll, timed from here: claim "
        f"{poll['claim']:.1f} ms, next due time {poll['next_due']:.1f} ms"
    )
    wake = result["wakeup_ms"]
    print(
        f"send_event -> completed, one event among {args.workflows:,} waiting "
        f"({len(wake)} tries): median {statistics.median(wake):.0f} ms, max {max(wake):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
