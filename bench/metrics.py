"""How long `durable.get_metrics` takes over 100,000 finished executions on PostgreSQL.

    PYTHONPATH=. .venv/bin/python bench/metrics.py [--rows N] [--runs N] [--explain]

Uses its own database (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/durable_bench_metrics): creates it if missing, migrates
it, replaces its executions with N generated ones (a mix of workflows, statuses and
durations over 30 days), then prints the median time of several runs per workflow and
period.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/durable_bench_metrics"
# (name, share of executions, median duration in ms)
WORKFLOWS = [
    ("bench_checkout", 0.40, 400),
    ("bench_invoice", 0.25, 1_500),
    ("bench_inventory_sync", 0.15, 30_000),
    ("bench_onboarding", 0.12, 5_000),
    ("bench_nightly_report", 0.08, 120_000),
]
STATUSES = [
    ("completed", 0.86),
    ("failed", 0.07),
    ("compensated", 0.03),
    ("compensation_failed", 0.01),
    ("cancelled", 0.03),
]
PERIODS = ["last_hour", "last_24_hours", "last_7_days", "last_30_days", "all_time"]
SPAN = timedelta(days=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7, help="Timed runs per cell (median).")
    parser.add_argument("--explain", action="store_true", help="Print the query plans.")
    options = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    create_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    define_workflows()
    print(f"inserting {options.rows:,} finished executions ...", flush=True)
    started = time.perf_counter()
    populate(options.rows)
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    if options.explain:
        explain()
    report(options.runs)


def create_database(url: str) -> None:
    import psycopg

    from testproject import dburl

    config = dburl.parse(url, Path.cwd())
    if "postgresql" not in config["ENGINE"]:
        raise SystemExit(f"this benchmark needs PostgreSQL, not {url}")
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def define_workflows() -> None:
    """Register the workflow names the generated rows use (get_metrics resolves them)."""
    from durable import Workflow, step

    class BenchWorkflow(Workflow):
        abstract = True

        @step
        def run(self, ctx: Any) -> None:
            return None

    for name, _, _ in WORKFLOWS:
        type(name.title().replace("_", ""), (BenchWorkflow,), {"name": name})


def populate(rows: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from durable.models import WorkflowExecution

    rng = random.Random(42)
    now = timezone.now()
    names = [w[0] for w in WORKFLOWS]
    medians = {w[0]: w[2] for w in WORKFLOWS}
    statuses = [s[0] for s in STATUSES]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {WorkflowExecution._meta.db_table} CASCADE")
    batch = []
    with created_at_settable():
        for i in range(rows):
            name = rng.choices(names, weights=[w[1] for w in WORKFLOWS])[0]
            status = rng.choices(statuses, weights=[s[1] for s in STATUSES])[0]
            created = now - SPAN * rng.random()
            started = created + timedelta(milliseconds=rng.expovariate(1 / 200))
            duration_ms = max(1, int(rng.lognormvariate(0, 1) * medians[name]))
            completed = min(started + timedelta(milliseconds=duration_ms), now)
            batch.append(
                WorkflowExecution(
                    workflow_id=f"bench-{i}",
                    workflow_module="bench.metrics",
                    workflow_name=name,
                    status=status,
                    input={"n": i},
                    context={"n": i, "ok": status == "completed"},
                    current_step="run",
                    created_at=created,
                    started_at=started,
                    completed_at=completed,
                    duration_ms=int((completed - started).total_seconds() * 1000),
                )
            )
            if len(batch) == 1_000:
                WorkflowExecution.objects.bulk_create(batch)
                batch = []
        WorkflowExecution.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {WorkflowExecution._meta.db_table}")


@contextmanager
def created_at_settable() -> Iterator[None]:
    """auto_now_add would stamp every generated row with the current time."""
    from durable.models import WorkflowExecution

    field = WorkflowExecution._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


def timed(runs: int, workflow: str | None, period: str) -> tuple[float, dict[str, Any]]:
    import durable

    result = durable.get_metrics(workflow, period=period)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        durable.get_metrics(workflow, period=period)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def report(runs: int) -> None:
    busiest = WORKFLOWS[0][0]
    header = f"{'period':<15} {'workflow':<15} {'executions':>10} {'p95 ms':>9} {'median time':>12}"
    print(f"\nget_metrics, median of {runs} runs\n{header}\n{'-' * len(header)}")
    for period in PERIODS:
        for workflow in (None, busiest):
            median, result = timed(runs, workflow, period)
            print(
                f"{period:<15} {workflow or '(all)':<15} {result['total_executions']:>10,} "
                f"{result['p95_duration_ms'] or 0:>9,} {median:>9.1f} ms"
            )


def explain() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import durable

    with CaptureQueriesContext(connection) as queries:
        durable.get_metrics(WORKFLOWS[0][0], period="last_7_days")
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN ANALYZE {query['sql']}")
            print("\n".join(row[0] for row in cursor.fetchall()), end="\n\n")


if __name__ == "__main__":
    main()
