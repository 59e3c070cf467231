"""What the Durable side of the benchmark shares: the database, worker processes, /proc.

Imported by bench/run.py and its scenario modules (throughput.py, scale.py, memory.py,
waiting.py, adapters.py); the peers (bench/peers/) never import it, they run in their own
virtualenv.
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
READY_LINE = "serving"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORKFLOW_MODULES = "bench.run_workflows,bench.waiting_workflows,bench.core_workflows"


def admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database_name(url)}"')


def setup_django(url: str) -> None:
    """Point this process at `url` (recreated and migrated) with the bench workflows loaded."""
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("this benchmark needs PostgreSQL (--database-url postgres://...)")
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["DURABLE_WORKFLOW_MODULES"] = WORKFLOW_MODULES
    os.environ.setdefault("DJANGO_DEBUG", "0")  # DEBUG keeps every query in memory
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    recreate_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import bench.core_workflows
    import bench.run_workflows
    import bench.waiting_workflows  # noqa: F401


def server_setting(name: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return str(cursor.fetchone()[0])


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": server_setting("server_version"),
        "fsync": server_setting("fsync"),
        "synchronous_commit": server_setting("synchronous_commit"),
    }


def empty_tables() -> None:
    """Drop every execution (and, by cascade, its attempts, tasks, inputs...)."""
    from django.db import connection

    from durable.models import Task, WorkflowExecution

    tables = [WorkflowExecution._meta.db_table, Task._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        cursor.execute("VACUUM ANALYZE")


def settle_tables() -> None:
    """After a batch was started and before workers run it: analyze the tables the starts
    filled and flush their dirty pages, so that neither autovacuum/autoanalyze nor the
    checkpointer does the starts' work during the timed window (bench/clone.py does the
    same after a fill)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")


# -- /proc -----------------------------------------------------------------------------------


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name: utime and stime are fields 14 and 15.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def committed_transactions(url: str) -> int:
    """pg_stat_database.xact_commit of `url`'s database, read from another database."""
    import psycopg

    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [database_name(url)]
        ).fetchone()
    return int(row[0]) if row else 0


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


# -- worker processes --------------------------------------------------------------------------


def worker_command(concurrency: int, queues: str | None = None) -> list[str]:
    """`queues`: serve only these (the io and fanout scenarios serve `default` alone, so
    that --concurrency C is the worker's C, not C per configured queue)."""
    return [
        sys.executable,
        str(REPO / "manage.py"),
        "durable_worker",
        "--concurrency",
        str(concurrency),
        "--no-scheduler",
        *(["--queues", queues] if queues else []),
    ]


def worker_env(url: str, poll_interval: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        # The test project's DEBUG default keeps every query in memory: workers grow, slow.
        "DJANGO_DEBUG": "0",
        "DURABLE_POLL_INTERVAL": poll_interval,
        "DURABLE_WORKFLOW_MODULES": WORKFLOW_MODULES,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


@dataclass
class Workers:
    """Real `manage.py durable_worker` processes, logs in var/bench-worker-<label>-<n>.log."""

    url: str
    concurrency: int
    poll_interval: str
    env: dict[str, str] = field(default_factory=dict)
    # Worker n serves Prometheus metrics on this port + n (bench/telemetry.py).
    metrics_port: int | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, count: int, label: str, command: list[str] | None = None) -> None:
        VAR.mkdir(exist_ok=True)
        for n in range(count):
            log = VAR / f"bench-worker-{label}-{n}.log"
            args = command or worker_command(self.concurrency)
            if self.metrics_port is not None:
                args = [*args, "--metrics-port", str(self.metrics_port + len(self.processes))]
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        args,
                        cwd=REPO,
                        env=worker_env(self.url, self.poll_interval, self.env),
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

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(done: Callable[[], bool], workers: Workers, timeout: float) -> str | None:
    """Poll `done` until it holds (None) or why it stopped being awaited: the timeout, or a
    worker that exited. For scenarios that report a run that did not finish instead of
    exiting, as wait_finished in throughput.py does."""
    deadline = time.monotonic() + timeout
    while not done():
        for process, log in zip(workers.processes, workers.logs, strict=True):
            if process.poll() is not None:
                return f"worker {process.pid} exited ({process.returncode}); see {log}"
        if time.monotonic() > deadline:
            return f"timeout after {timeout:.0f}s"
        time.sleep(0.2)
    return None


def log_text(workers: Workers) -> str:
    return "".join(log.read_text(errors="replace") for log in workers.logs)


def make_ready(workflow: Any, count: int, prefix: str, input: dict[str, Any]) -> None:
    """Empty the tables, then `count` ready executions of `workflow`: one started with
    durable.start(), copied in SQL (bench/clone.py), so that making them costs seconds, not
    the start() loop's minutes; then settled as a throughput batch is."""
    import durable
    from bench.clone import clone_execution
    from durable.models import WorkflowExecution

    empty_tables()
    wid = durable.start(workflow, input)
    if count > 1:
        template = WorkflowExecution.objects.get(workflow_id=wid).pk
        clone_execution(template, count - 1, prefix, progress=False)
    settle_tables()
