"""What thousands of waiting workflows cost an idle worker, and how fast one event wakes one.

    .venv/bin/python bench/waiting.py --workflows 10000

Creates (drops first) the PostgreSQL database named in --database-url, migrates it, starts
N workflows whose first step waits for an event, starts one real `durable_worker` process
(`--queues default`, so one queue as in a default install), waits until every workflow is
parked, then lets the worker idle and measures:

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
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_MODULE = "bench.waiting_workflows"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
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


def cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name: utime and stime are fields 14 and 15.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def recreate_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def committed_transactions(url: str) -> int:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]) if row else 0


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


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["DURABLE_WORKFLOW_MODULES"] = WORKFLOW_MODULE
    os.environ.setdefault("DURABLE_POLL_INTERVAL", "1.0")  # Durable's own default
    sys.path.insert(0, str(REPO))
    if args.count_queries_into:
        run_counting_worker(Path(args.count_queries_into))
        return 0
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("this benchmark needs PostgreSQL (--database-url postgres://...)")

    print(f"database: {args.database_url} (recreated)")
    recreate_database(args.database_url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    import durable
    from bench.waiting_workflows import WaitForEvent
    from durable.models import ExecutionStatus, WorkflowExecution

    def count(status: str) -> int:
        return WorkflowExecution.objects.filter(status=status).count()

    started = time.monotonic()
    ids = [durable.start(WaitForEvent, {"n": n}) for n in range(args.workflows)]
    inserting = time.monotonic() - started
    print(
        f"started {args.workflows} workflows with durable.start() in {inserting:.1f}s "
        f"({args.workflows / inserting:.0f}/s)"
    )

    counts_file = REPO / "var" / f"bench-waiting-queries-{os.getpid()}.json"
    log = REPO / "var" / "bench-waiting-worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--database-url",
                args.database_url,
                "--count-queries-into",
                str(counts_file),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        wait_for(
            lambda: count(ExecutionStatus.WAITING) == args.workflows,
            timeout=max(120.0, args.workflows / 20),
            what="every workflow to park",
            worker=worker,
        )
        parking = time.monotonic() - started
        print(
            f"one worker ran and parked all {args.workflows} in {parking:.1f}s "
            f"(including its start-up)"
        )
        time.sleep(3)  # let the last checkpoints and the LISTEN probe settle

        cpu_before, counts_before = cpu_seconds(worker.pid), read_counts(counts_file)
        xacts_before, wall_before = committed_transactions(args.database_url), time.monotonic()
        time.sleep(args.idle_seconds)
        cpu_after, counts_after = cpu_seconds(worker.pid), read_counts(counts_file)
        xacts_after, wall_after = committed_transactions(args.database_url), time.monotonic()
        idle = wall_after - wall_before
        statements = {
            kind: counts_after.get(kind, 0) - counts_before.get(kind, 0) for kind in counts_after
        }
        total = sum(statements.values())

        print()
        print("| workflows waiting | idle seconds | worker CPU | queries/s | transactions/s |")
        print("|---|---|---|---|---|")
        print(
            f"| {count(ExecutionStatus.WAITING):,} | {idle:.1f} "
            f"| {100 * (cpu_after - cpu_before) / idle:.2f} % | {total / idle:.2f} "
            f"| {(xacts_after - xacts_before) / idle:.2f} |"
        )
        print()
        print("statements the idle worker ran (verb + first table):")
        for kind, n in sorted(statements.items(), key=lambda kv: -kv[1]):
            if n:
                print(f"  {n:6d}  {kind}")
        claim_ms, due_ms = idle_poll_cost()
        print(
            f"database time of the queries of one idle poll, timed from here: claim "
            f"{claim_ms:.1f} ms, next due time {due_ms:.1f} ms"
        )

        latencies = []
        for wid in ids[:: max(1, len(ids) // args.wakeups)][: args.wakeups]:
            sent = time.monotonic()
            durable.send_event(wid, "go", {"at": sent})
            deadline = sent + 30
            while durable.get_execution(wid).status != ExecutionStatus.COMPLETED:
                if time.monotonic() > deadline:
                    sys.exit(f"{wid} did not complete within 30s of its event")
                time.sleep(0.002)
            latencies.append(time.monotonic() - sent)
            time.sleep(1.5)  # the worker goes idle again before the next event
        print()
        print(
            f"send_event -> completed, one event among {args.workflows:,} waiting "
            f"({len(latencies)} tries): median {1000 * statistics.median(latencies):.0f} ms, "
            f"max {1000 * max(latencies):.0f} ms"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        counts_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
