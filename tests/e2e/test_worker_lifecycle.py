"""Workers dying and stopping: SIGKILL loses nothing, SIGTERM drains, bad arguments fail."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable.models import StepExecution, Task
from durable.testing import assert_workflow_completed
from tests.e2e.workflows import InterruptibleStep, ShortStep
from tests.support.workers import pid_of, wait_until

pytestmark = pytest.mark.e2e


def runs_recorded(marker: Path) -> list[int]:
    return [int(pid) for pid in marker.read_text().split()] if marker.exists() else []


def wait_for_runs(marker: Path, count: int, workers) -> None:
    wait_until(
        lambda: len(runs_recorded(marker)) >= count,
        timeout=30,
        message=lambda: f"the step did not start {count} time(s)\n{workers.logs()}",
    )


def test_sigkill_mid_step_reruns_on_another_worker_as_the_same_attempt(workers, tmp_path):
    marker = tmp_path / "runs"
    (doomed,) = workers.start(1, lease_seconds=2)
    wid = durable.start(InterruptibleStep, {"marker": str(marker)})
    wait_for_runs(marker, 1, workers)
    running = StepExecution.objects.get(execution__workflow_id=wid, step="long_step")
    assert (running.status, pid_of(running.worker_id)) == ("running", doomed.pid)

    (survivor,) = workers.start(1, lease_seconds=2)
    doomed.kill()
    execution = assert_workflow_completed(wid, timeout=60)

    assert runs_recorded(marker) == [doomed.pid, survivor.pid]
    rows = list(execution.steps.filter(step="long_step"))
    # A crash is not a recorded failure: the rerun is still attempt 1.
    assert [(row.attempt, row.status) for row in rows] == [(1, "completed")]
    assert pid_of(rows[0].worker_id) == survivor.pid
    assert pid_of(execution.steps.get(step="after").worker_id) == survivor.pid
    assert execution.context["long_step_done"] is True
    assert "retook 1 task" in survivor.output()


def test_sigterm_lets_the_running_step_finish_and_claims_nothing_new(workers, tmp_path):
    marker = tmp_path / "runs"
    (worker,) = workers.start(1)
    wid = durable.start(ShortStep, {"marker": str(marker), "seconds": 2})
    wait_for_runs(marker, 1, workers)

    assert worker.terminate() == 0, worker.output()

    execution = durable.get_execution(wid)
    finished = execution.steps.get(step="short_step")
    assert (finished.status, pid_of(finished.worker_id)) == ("completed", worker.pid)
    assert not execution.steps.filter(step="next_step").exists()
    assert Task.objects.get(execution=execution, step="next_step").status == "ready"
    assert "draining" in worker.output()

    (successor,) = workers.start(1)
    execution = assert_workflow_completed(wid, timeout=30)
    assert pid_of(execution.steps.get(step="next_step").worker_id) == successor.pid
    assert runs_recorded(marker) == [worker.pid]


def test_sigterm_releases_a_step_that_outlives_the_shutdown_timeout(workers, tmp_path):
    marker = tmp_path / "runs"
    (worker,) = workers.start(1, extra_args=("--shutdown-timeout", "1"))
    wid = durable.start(InterruptibleStep, {"marker": str(marker)})
    wait_for_runs(marker, 1, workers)

    assert worker.terminate() == 0, worker.output()

    # Released, not left to its (30 s) lease: any worker may take it at once.
    task = Task.objects.get(execution__workflow_id=wid, step="long_step")
    assert (task.status, task.lease_token) == ("ready", None)
    assert "releasing long_step" in worker.output()

    (successor,) = workers.start(1)
    execution = assert_workflow_completed(wid, timeout=60)
    assert runs_recorded(marker) == [worker.pid, successor.pid]
    rows = list(execution.steps.filter(step="long_step"))
    assert [(row.attempt, row.status) for row in rows] == [(1, "completed")]


def test_step_longer_than_its_lease_keeps_it_while_the_worker_heartbeats(workers, tmp_path):
    # A long poll interval must not stop the worker from extending the lease meanwhile.
    marker = tmp_path / "runs"
    wid = durable.start(ShortStep, {"marker": str(marker), "seconds": 5})
    (holder,) = workers.start(1, lease_seconds=3, extra_args=("--poll-interval", "300"))
    wait_for_runs(marker, 1, workers)
    (rival,) = workers.start(1, lease_seconds=3)

    execution = assert_workflow_completed(wid, timeout=60)

    assert runs_recorded(marker) == [holder.pid], workers.logs()
    row = execution.steps.get(step="short_step")
    assert (row.attempt, pid_of(row.worker_id)) == (1, holder.pid)
    assert "retook" not in rival.output()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--queues", "default,nope"), "unknown queue(s) nope"),
        (("--concurrency", "0"), "--concurrency must be at least 1"),
        (("--shutdown-timeout", "-1"), "--shutdown-timeout must be >= 0"),
        (("--poll-interval", "0"), "--poll-interval must be > 0"),
        (("--concurrency", "many"), "invalid int value: 'many'"),
    ],
)
def test_worker_command_rejects_bad_arguments(workers, args, message):
    result = workers.run_command(*args)

    assert result.returncode != 0
    assert message in result.stderr, result.stderr
