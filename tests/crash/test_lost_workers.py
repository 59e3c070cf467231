"""Workers that die or are stopped the hard way: a step that keeps killing its worker
fails with WorkerLost, and a second SIGTERM exits at once, leaving the step to its lease."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import durable
from durable.models import WorkflowExecution
from durable.testing import assert_workflow_completed
from tests.crash.workflows import LongStep, PoisonPill
from tests.support.workers import pid_of, wait_until

pytestmark = pytest.mark.e2e

WORKFLOW_MODULES = "tests.crash.workflows"


def runs(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()] if marker.exists() else []


def test_step_that_kills_its_worker_every_time_fails_with_worker_lost(workers, tmp_path):
    marker = tmp_path / "runs"
    wid = durable.start(PoisonPill, {"marker": str(marker)})
    started = []

    def finished_restarting_dead_workers() -> bool:
        # A process supervisor's job: start a new worker whenever the last one died.
        if not any(w.process.poll() is None for w in workers.processes):
            started.extend(
                workers.start(
                    1,
                    lease_seconds=1,
                    workflow_modules=WORKFLOW_MODULES,
                    env={"DURABLE_MAX_LEASE_EXPIRIES": "2"},
                    wait_ready=False,
                )
            )
        return WorkflowExecution.objects.get(workflow_id=wid).is_finished

    wait_until(
        finished_restarting_dead_workers,
        timeout=90,
        message=lambda: f"the poison pill was not given up on\n{workers.logs()}",
    )

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.WorkerLost"
    assert "DURABLE['MAX_LEASE_EXPIRIES'] = 2" in execution.error["message"]
    # Two workers died running it; the third gave up without running it.
    assert len(runs(marker)) == 2
    assert [w.process.returncode for w in started[:2]] == [1, 1]
    (row,) = execution.steps.filter(step="crash_worker")
    assert (row.status, row.attempt) == ("failed", 1)
    assert not execution.steps.filter(step="never_reached").exists()


def test_second_sigterm_exits_at_once_and_the_step_is_retaken_after_its_lease(workers, tmp_path):
    marker = tmp_path / "runs"
    (stopped,) = workers.start(
        1,
        lease_seconds=2,
        workflow_modules=WORKFLOW_MODULES,
        extra_args=("--shutdown-timeout", "600"),
    )
    wid = durable.start(LongStep, {"marker": str(marker)})
    wait_until(
        lambda: runs(marker), timeout=30, message=lambda: f"no run started\n{workers.logs()}"
    )

    stopped.process.send_signal(signal.SIGTERM)
    stopped.wait_for_output("draining")
    stopped.process.send_signal(signal.SIGTERM)

    # Long before the step (120 s) or the drain (600 s) would end.
    assert stopped.process.wait(timeout=30) == 128 + signal.SIGTERM, stopped.output()
    assert "releasing" not in stopped.output()

    (successor,) = workers.start(1, lease_seconds=2, workflow_modules=WORKFLOW_MODULES)
    execution = assert_workflow_completed(wid, timeout=60)
    assert runs(marker) == [stopped.pid, successor.pid]
    assert "retook 1 task" in successor.output()
    (row,) = execution.steps.filter(step="long_step")
    assert (row.status, row.attempt, pid_of(row.worker_id)) == ("completed", 1, successor.pid)
