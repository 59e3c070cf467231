"""Hundreds of async steps in flight on one worker: they run as coroutines, not threads,
and the worker's own database work stays on a handful of connections."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

import durable
from durable.engine.worker import DEFAULT_SYNC_THREADS
from durable.models import StepExecution, WorkflowExecution
from tests.e2e.workflows import AsyncIO, BoundedBodies
from tests.support import workers as support
from tests.support.workers import wait_until

pytestmark = pytest.mark.e2e

CONCURRENCY = 400
WORKFLOWS = 400


class Peaks:
    """Samples the worker's threads (and on PostgreSQL the test database's connections)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.connections = 0
        self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        admin = None
        if connection.vendor == "postgresql":
            import psycopg

            url = support.test_database_url()
            admin = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
            name = url.rsplit("/", 1)[1]
        try:
            while not self._stop.wait(0.05):
                if admin is not None:
                    (count,) = admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
                    ).fetchone()
                    self.connections = max(self.connections, int(count))
                status = Path(f"/proc/{self.pid}/status").read_text()
                line = next(li for li in status.splitlines() if li.startswith("Threads:"))
                self.threads = max(self.threads, int(line.split()[1]))
        finally:
            if admin is not None:
                admin.close()


def most_at_once(rows: list[StepExecution]) -> int:
    edges = sorted(
        [(row.started_at, 1) for row in rows] + [(row.completed_at, -1) for row in rows],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


def test_hundreds_of_async_steps_run_as_coroutines_on_few_connections(workers: Any) -> None:
    (worker,) = workers.start(1, concurrency=CONCURRENCY)
    ids = durable.start_many(AsyncIO, [{"n": n} for n in range(WORKFLOWS)])
    with Peaks(worker.pid) as peaks:
        wait_until(
            lambda: (
                WorkflowExecution.objects.filter(workflow_id__in=ids, status="completed").count()
                == WORKFLOWS
            ),
            timeout=120,
            message=lambda: f"not every workflow completed\n{workers.logs()}",
        )

    assert not WorkflowExecution.objects.filter(workflow_id__in=ids).exclude(status="completed")
    assert [e.result for e in WorkflowExecution.objects.filter(workflow_id__in=ids)] != []
    rows = list(StepExecution.objects.filter(execution__workflow_id__in=ids))
    assert len(rows) == 3 * WORKFLOWS
    # More steps ran at once than a worker has threads for sync steps: they were coroutines.
    assert most_at_once(rows) > DEFAULT_SYNC_THREADS
    # The worker's threads: lanes, lease keeper, committer, listener, log flusher, the sync
    # pool it never used; not one per step in flight.
    assert peaks.threads < 30, peaks.threads
    if connection.vendor == "postgresql":
        # The test's own connections (this process, the sampler) and the worker's few,
        # with 400 steps in flight.
        assert peaks.connections <= 12, peaks.connections


def test_a_queues_concurrency_bounds_the_bodies_running_async_and_sync(workers: Any) -> None:
    """Async and sync bodies share the queue's slots (the next steps checkpoints hand on
    included): never more bodies at once than its concurrency."""
    workers.start(1, concurrency=4)
    ids = durable.start_many(BoundedBodies, [{} for _ in range(40)])
    wait_until(
        lambda: (
            WorkflowExecution.objects.filter(workflow_id__in=ids, status="completed").count()
            == len(ids)
        ),
        timeout=120,
        message=lambda: f"not every workflow completed\n{workers.logs()}",
    )
    seen = [n for e in WorkflowExecution.objects.filter(workflow_id__in=ids) for n in e.result]
    assert len(seen) == 3 * len(ids)
    assert max(seen) == 4  # the slots were all used, and never one more
