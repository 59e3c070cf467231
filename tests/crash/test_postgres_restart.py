"""PostgreSQL restarting under running workers: they reconnect and every workflow finishes.

The test restarts a throwaway cluster of its own (port 5499), never the server the rest of
the suite uses. PostgreSQL runs only; when the cluster tools are missing it skips locally
and fails on CI (CI set), so the guarantee is never silently untested there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.support.workers import REPO, WorkerPool, wait_until

pytestmark = pytest.mark.e2e

CLUSTER = "durable_restart_test"
PORT = 5499
DATABASE_URL = f"postgres://postgres@127.0.0.1:{PORT}/durable"
WORKFLOWS = 50
TOOLS = ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster")


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL restart test: {reason}")
    pytest.skip(reason)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=check)


def postgres_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    return versions[-1]


@pytest.fixture
def throwaway_cluster(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL cluster on port 5499 with Durable's tables migrated; dropped after."""
    if connection.vendor != "postgresql":
        pytest.skip("restarts a PostgreSQL cluster: runs in the PostgreSQL run only")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing or not Path("/etc/postgresql").is_dir():
        unavailable(f"the PostgreSQL cluster tools are missing ({', '.join(missing) or 'none'})")
    if os.geteuid() != 0:
        unavailable("creating a PostgreSQL cluster needs root")
    version = postgres_version()
    # Two test runs at once would drop each other's cluster: take turns.
    with open(f"/tmp/{CLUSTER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run("pg_dropcluster", "--stop", version, CLUSTER, check=False)
        try:
            run("pg_createcluster", version, CLUSTER, "-p", str(PORT), "--", "--auth=trust")
            run("pg_ctlcluster", version, CLUSTER, "start")
            with psycopg.connect(admin_url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE durable")
            manage("migrate", "--no-input", "-v", "0")
            yield version
        finally:
            run("pg_dropcluster", "--stop", version, CLUSTER, check=False)


def admin_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{PORT}/{database}"


def project_env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DURABLE_WORKFLOW_MODULES": "tests.crash.workflows",
        "PYTHONPATH": str(REPO),
    }


def manage(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def start_workflows(count: int) -> list[str]:
    """Start workflows from another process: this one's Django talks to the test database."""
    # Steps of 0.2 to 1.5 s: checkpoints keep happening, so some meet the restart.
    code = (
        "import json, django; django.setup(); import durable; "
        "from tests.crash.workflows import QuickSteps; "
        "print(json.dumps([durable.start(QuickSteps, {'pause': 0.2 + (n % 14) / 10}) "
        f"for n in range({count})]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ids: list[str] = json.loads(result.stdout)
    return ids


def query(sql: str, *params: object) -> list[tuple[object, ...]]:
    """Query the throwaway cluster; while it restarts, connecting is retried."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(admin_url("durable"), autocommit=True) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def statuses(ids: list[str]) -> dict[object, object]:
    rows = query(
        "SELECT status, count(*) FROM durable_workflowexecution "
        "WHERE workflow_id = ANY(%s) GROUP BY status",
        ids,
    )
    return dict(rows)  # type: ignore[arg-type]


def completed_steps(ids: list[str]) -> int:
    rows = query(
        "SELECT count(*) FROM durable_stepexecution s JOIN durable_workflowexecution e "
        "ON s.execution_id = e.id WHERE e.workflow_id = ANY(%s) AND s.status = 'completed'",
        ids,
    )
    return int(rows[0][0])  # type: ignore[call-overload]


def test_workers_reconnect_after_postgres_restarts_and_finish_every_workflow(
    throwaway_cluster, tmp_path
):
    version = throwaway_cluster
    pool = WorkerPool(tmp_path)
    try:
        pool.start(
            2, lease_seconds=3, workflow_modules="tests.crash.workflows", database_url=DATABASE_URL
        )
        ids = start_workflows(WORKFLOWS)
        for progress in (10, 50):
            # Restart while steps are in flight: some have completed, many have not.
            wait_until(
                lambda progress=progress: completed_steps(ids) >= progress,
                timeout=60,
                message=lambda: f"no progress before the restart\n{pool.logs()}",
            )
            run("pg_ctlcluster", version, CLUSTER, "restart")

        wait_until(
            lambda: statuses(ids) == {"completed": WORKFLOWS},
            timeout=180,
            message=lambda: f"not every workflow completed: {statuses(ids)}\n{pool.logs()}",
        )

        # Each step checkpointed once, at attempt 1: the restarts cost no step an attempt.
        rows = query(
            "SELECT s.status, s.attempt, count(*) FROM durable_stepexecution s "
            "JOIN durable_workflowexecution e ON s.execution_id = e.id "
            "WHERE e.workflow_id = ANY(%s) GROUP BY s.status, s.attempt",
            ids,
        )
        assert rows == [("completed", 1, 3 * WORKFLOWS)], pool.logs()
        results = query(
            "SELECT DISTINCT result::text FROM durable_workflowexecution "
            "WHERE workflow_id = ANY(%s)",
            ids,
        )
        assert results == [("3",)]
        # The restarts were felt: the workers' loops lost the database and carried on.
        assert "worker loop error" in pool.logs()
        for worker in pool.processes:
            assert worker.process.poll() is None, worker.output()
            log = worker.output()
            assert "LISTEN connection lost" in log, log
            assert "LISTEN connection re-established" in log, log
    finally:
        pool.stop_all()
