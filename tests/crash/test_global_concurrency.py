"""A queue's global_concurrency holds across worker processes, and a worker killed
mid-step keeps its slot only until its lease lapses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.dsl import registry
from durable.models import WorkflowExecution
from tests.support.workers import wait_until

pytestmark = pytest.mark.e2e

CAP = 2
QUEUES = {"capped": {"concurrency": 4, "global_concurrency": CAP}}


def intervals(journal: Path, killed: int, killed_at: float) -> list[tuple[float, float]]:
    """(start, end) of every run of the step; a run of the killed worker that never ended
    ran until the kill."""
    starts: dict[str, tuple[float, int]] = {}
    ends: dict[str, float] = {}
    for line in journal.read_text().splitlines():
        kind, at, pid, run = line.split()
        if kind == "start":
            starts[run] = (float(at), int(pid))
        else:
            ends[run] = float(at)
    found = []
    for run, (start, pid) in starts.items():
        if run in ends:
            found.append((start, ends[run]))
        else:
            assert pid == killed, f"run {run} of a live worker never ended"
            found.append((start, killed_at))
    return found


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        most = max(most, running)
    return most


@pytest.fixture
def capped(settings: Any) -> Any:
    """The workflow on queue `capped`, registered only while the test runs (its queue is
    configured for this test alone)."""
    settings.DURABLE = {**settings.DURABLE, "QUEUES": {**settings.DURABLE["QUEUES"], **QUEUES}}
    from tests.crash.capped_workflows import CappedStep

    registry.register(CappedStep.definition())
    yield CappedStep
    registry.unregister(CappedStep.name)


def test_global_concurrency_holds_across_workers_and_a_sigkill(
    workers: Any, tmp_path: Path, capped: Any
) -> None:
    journal = tmp_path / "journal"
    pool = workers.start(
        3,
        lease_seconds=2,
        workflow_modules="tests.crash.capped_workflows",
        env={"DURABLE_EXTRA_QUEUES": json.dumps(QUEUES)},
    )
    ids = durable.start_many(capped, [{"journal": str(journal), "pause": 0.3}] * 24)

    # Kill a worker while it runs a step (its slot is held until its lease lapses).
    found: list[int] = []

    def a_worker_runs_a_step() -> bool:
        lines = journal.read_text().splitlines() if journal.exists() else []
        runs = {line.split()[3]: int(line.split()[2]) for line in lines}
        ended = {line.split()[3] for line in lines if line.startswith("end")}
        found[:] = [pid for run, pid in runs.items() if run not in ended]
        return bool(found)

    wait_until(a_worker_runs_a_step, timeout=30, message=lambda: f"no step ran\n{workers.logs()}")
    victim_pid = found[0]
    victim = next(w for w in pool if w.pid == victim_pid)
    victim.kill()
    killed_at = time.time()

    wait_until(
        lambda: (
            WorkflowExecution.objects.filter(workflow_id__in=ids, status="completed").count()
            == len(ids)
        ),
        timeout=120,
        message=lambda: f"not every workflow completed\n{workers.logs()}",
    )
    spans = intervals(journal, victim_pid, killed_at)
    assert len(spans) >= len(ids)
    assert most_at_once(spans) <= CAP, sorted(spans)
    # The cap was used, not just respected: two steps did run at once.
    assert most_at_once(spans) == CAP
