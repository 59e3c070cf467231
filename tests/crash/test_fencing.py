"""Fencing: a worker frozen past its lease comes back to find its step taken over, and its
late checkpoint is rejected instead of overwriting the other worker's outcome."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from django.db import connection

import durable
from durable.testing import assert_workflow_completed
from testproject.demo.models import LedgerEntry
from tests.crash.workflows import FencedStep, TransactionalFencedStep
from tests.support.workers import WorkerProcess, pid_of, wait_until

pytestmark = pytest.mark.e2e


def database_is_locked(open_transactions: int = 0) -> bool:
    """Whether other processes are inside more than `open_transactions` transactions on
    the test database (SQLite: inside a write transaction at all)."""
    if connection.vendor == "sqlite":
        probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND state <> 'idle'"
        )
        (busy,) = cursor.fetchone()
    return busy > open_transactions


def pause_between_transactions(worker: WorkerProcess, step_transactions: int = 0) -> None:
    """SIGSTOP the worker at a moment it holds no transaction open besides those of its
    running steps: frozen inside one of its loop's, it would keep its locks and stall every
    other worker (a different failure than the one under test)."""
    for _ in range(50):
        worker.pause()
        time.sleep(0.2)  # let a statement the server was still running finish
        if not database_is_locked(step_transactions):
            return
        worker.resume()
        time.sleep(0.05)
    raise AssertionError("could not pause the worker outside a transaction")


def test_worker_paused_past_its_lease_has_its_late_checkpoint_rejected(workers, tmp_path):
    marker = tmp_path / "runs"
    (frozen,) = workers.start(1, lease_seconds=2, workflow_modules="tests.crash.workflows")
    wid = durable.start(FencedStep, {"marker": str(marker), "seconds": 4})
    wait_until(
        marker.exists, timeout=30, message=lambda: f"the step never started\n{workers.logs()}"
    )
    pause_between_transactions(frozen)

    (successor,) = workers.start(1, lease_seconds=2, workflow_modules="tests.crash.workflows")
    execution = assert_workflow_completed(wid, timeout=60)
    frozen.resume()
    frozen.wait_for_output("checkpoint rejected", timeout=30)

    assert runs(marker) == [frozen.pid, successor.pid]
    assert "retook 1 task" in successor.output()
    execution.refresh_from_db()
    assert execution.context["done_by"] == successor.pid
    assert execution.context["after_saw"] == successor.pid
    (row,) = execution.steps.filter(step="slow_step")
    assert (row.status, row.attempt, row.output) == ("completed", 1, successor.pid)
    assert pid_of(row.worker_id) == successor.pid
    assert f"step 'slow_step' of {wid}" in frozen.output()
    assert frozen.process.poll() is None, "the rejected worker keeps serving"


def test_transactional_step_of_a_paused_worker_rolls_back_when_its_lease_was_lost(
    workers, tmp_path
):
    if connection.vendor == "sqlite":
        pytest.skip(
            "on SQLite a running transactional step holds the write lock: no other worker "
            "can take it over until it ends"
        )
    marker = tmp_path / "runs"
    (frozen,) = workers.start(1, lease_seconds=2, workflow_modules="tests.crash.workflows")
    wid = durable.start(TransactionalFencedStep, {"marker": str(marker), "seconds": 4})
    wait_until(
        marker.exists, timeout=30, message=lambda: f"the step never started\n{workers.logs()}"
    )
    # Paused inside the step's own transaction, which has booked its row already.
    pause_between_transactions(frozen, step_transactions=1)

    (successor,) = workers.start(1, lease_seconds=2, workflow_modules="tests.crash.workflows")
    execution = assert_workflow_completed(wid, timeout=60)
    frozen.resume()
    frozen.wait_for_output("checkpoint rejected", timeout=30)

    assert runs(marker) == [frozen.pid, successor.pid]
    # The frozen run's booking went with its rejected checkpoint.
    keys = list(LedgerEntry.objects.filter(workflow_id=wid).values_list("key", flat=True))
    assert keys == [f"{wid}:{successor.pid}"]
    (row,) = execution.steps.filter(step="book_slowly")
    assert (row.status, row.output) == ("completed", successor.pid)


def runs(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()]
