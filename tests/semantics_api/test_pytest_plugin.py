"""`durable.testing.pytest_plugin`: its fixtures (this test run loads the plugin through
pyproject's addopts), and a separate `pytest --create-db` run of a project whose only
Durable test setup is the plugin, on the PostgreSQL bus."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

import durable
from tests.semantics_api.workflows import Adds, SleepsTwoHours
from tests.support.workers import REPO

POSTGRES = ("127.0.0.1", 5432)


def test_durable_inline_runs_a_workflow_in_the_test(durable_inline):
    execution = durable_inline.run(Adds, {"a": 2, "b": 5})
    assert execution.status == "completed"
    assert durable_inline.execution(execution.workflow_id).result == 7


def test_durable_clock_moves_a_sleep_past_its_end(durable_inline, durable_clock):
    execution = durable_inline.run(SleepsTwoHours, {})
    assert execution.status == "waiting"
    assert durable_clock.advance(hours=1) == 0
    assert durable_inline.run_until_idle() == 0
    assert durable_clock.advance(timedelta(hours=1, seconds=1)) == 1
    durable_inline.run_until_idle()
    assert durable_inline.execution(execution.workflow_id).result == "rested"
    with pytest.raises(TypeError, match="not both"):
        durable_clock.advance(timedelta(hours=1), hours=1)


@pytest.mark.e2e
def test_durable_workers_run_workflows_on_real_worker_processes(durable_workers):
    (worker,) = durable_workers.start(
        args=["--no-scheduler"], env={"DURABLE_WORKFLOW_MODULES": "tests.semantics_api.workflows"}
    )
    wid = durable.start(Adds, {"a": 20, "b": 22})
    assert durable.get_result(wid, timeout=60) == 42
    assert durable.get_execution(wid).steps.get().worker_id.split(":")[-2] == str(worker.pid)


# -- a separate test run --------------------------------------------------------------------

CONFTEST_WITH_PLUGIN = 'pytest_plugins = ["durable.testing.pytest_plugin"]\n'
PROJECT_TEST = """
import pytest

import durable
from durable.bus import get_bus
from durable.bus.postgres import PostgresBus
from durable.testing import run_until_idle


@pytest.mark.django_db(transaction=True)
def test_leaves_a_subscription_and_a_result_wait_behind():
    bus = get_bus()
    assert isinstance(bus, PostgresBus)
    subscription = bus.subscribe("left.open")  # LISTEN on the bus's own connection
    bus.publish("left.open", {"n": 1})
    assert subscription.get(timeout=10) == {"n": 1}
"""


def run_project(tmp_path: Path, conftest: str, database: str) -> subprocess.CompletedProcess[str]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = testproject.settings\n")
    (project / "conftest.py").write_text(conftest)
    (project / "test_listens.py").write_text(textwrap.dedent(PROJECT_TEST))
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "PYTHONPATH": str(REPO),
    }
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--create-db", "-p", "no:cacheprovider", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def databases() -> set[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as admin:
        return {row[0] for row in admin.execute("SELECT datname FROM pg_database")}


def drop(name: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def database_name() -> str:
    try:
        socket.create_connection(POSTGRES, timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable ({exc}); CI is set")
        pytest.skip(f"PostgreSQL is not reachable ({exc})")
    name = f"durable_plugin_{os.getpid()}"
    yield name
    drop(f"test_{name}")


def test_create_db_run_with_the_postgres_bus_drops_its_database_cleanly(tmp_path, database_name):
    result = run_project(tmp_path, CONFTEST_WITH_PLUGIN, database_name)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output
    assert "being accessed by other users" not in output
    assert f"test_{database_name}" not in databases()


def test_without_the_plugin_the_open_listen_connection_blocks_the_drop(tmp_path, database_name):
    # The control: what the plugin prevents does happen without it.
    # pytest-django reports the failed DROP as a warning and leaves the database behind.
    result = run_project(tmp_path, "", database_name)
    output = result.stdout + result.stderr
    assert "1 passed" in output
    assert f'database "test_{database_name}" is being accessed by other users' in output
    assert f"test_{database_name}" in databases()


@pytest.mark.django_db(transaction=True)
def test_workers_refuse_an_in_memory_sqlite_test_database(monkeypatch, tmp_path):
    from django.db import connections

    from durable.testing.workers import WorkerProcesses

    config = connections["default"].settings_dict
    monkeypatch.setitem(config, "ENGINE", "django.db.backends.sqlite3")
    monkeypatch.setitem(config, "NAME", ":memory:")
    workers = WorkerProcesses(tmp_path)
    with pytest.raises(RuntimeError, match="in-memory SQLite database, which a worker process"):
        workers.start()
    assert workers.processes == []
