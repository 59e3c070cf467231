"""Real scheduler processes against one database: each tick fires exactly once.

The schedules here use the optional sixth cron field (seconds, a documented feature) so a
tick falls due every 2 seconds; nothing in the scheduler is faked or sped up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from durable.models import ScheduledRun, ScheduledWorkflow, WorkflowExecution
from durable.scheduler import schedule
from tests.scheduler.workflows import SchedulerProbe
from tests.support.workers import REPO, WorkerProcess, wait_until, worker_env

pytestmark = pytest.mark.e2e

MODULES = "tests.scheduler.workflows"


class SchedulerPool:
    """`manage.py durable_scheduler` subprocesses, stopped with SIGTERM at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[WorkerProcess] = []

    def start(self, count: int, *, interval: float = 0.5) -> list[WorkerProcess]:
        started = []
        for _ in range(count):
            log = self.log_dir / f"scheduler-{len(self.processes) + len(started)}.log"
            args = [sys.executable, str(REPO / "manage.py"), "durable_scheduler", "-v", "2"]
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [*args, "--interval", str(interval)],
                    cwd=REPO,
                    env=worker_env(workflow_modules=MODULES),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(WorkerProcess(process, log))
        self.processes += started
        for scheduler in started:
            scheduler.wait_for_output("scheduler started")
        return started

    def logs(self) -> str:
        return "\n".join(f"--- {i} ---\n{p.output()}" for i, p in enumerate(self.processes))

    def stop_all(self) -> list[int]:
        return [p.terminate() for p in self.processes]


@pytest.fixture
def schedulers(transactional_db, tmp_path) -> Iterator[SchedulerPool]:
    pool = SchedulerPool(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def test_three_scheduler_processes_fire_every_tick_exactly_once(schedulers):
    first = schedule("every-2s", SchedulerProbe, "* * * * * */2").next_run_at
    schedulers.start(3)
    wait_until(
        lambda: ScheduledRun.objects.count() >= 6,
        timeout=60,
        message=lambda: f"fewer than 6 runs:\n{schedulers.logs()}",
    )
    assert schedulers.stop_all() == [0, 0, 0], schedulers.logs()

    runs = list(ScheduledRun.objects.order_by("fire_time"))
    times = [run.fire_time for run in runs]
    # Every tick since the schedule was created, each once, none skipped.
    assert times == [first + timedelta(seconds=2 * i) for i in range(len(runs))]
    executions = WorkflowExecution.objects.filter(workflow_name="scheduler_probe")
    assert sorted(e.workflow_id for e in executions) == sorted(r.workflow_id for r in runs)
    assert sorted(e.idempotency_key for e in executions) == [
        f"cron:every-2s:{t.isoformat()}" for t in times
    ]
    logs = schedulers.logs()
    assert "Traceback" not in logs
    assert logs.count("scheduler stopped") == 3


def test_a_worker_registers_class_schedules_and_runs_the_scheduled_workflows(workers):
    worker = workers.start(1, workflow_modules=f"{MODULES},tests.scheduler.cron_workflows")[0]
    wait_until(
        lambda: (
            WorkflowExecution.objects.filter(
                workflow_name="every_two_seconds", status="completed"
            ).count()
            >= 2
        ),
        timeout=60,
        message=lambda: f"scheduled runs did not complete:\n{worker.output()}",
    )
    row = ScheduledWorkflow.objects.get(name="every_two_seconds")
    assert (row.source, row.input, row.enabled) == ("code", {"source": "class"}, True)
    assert worker.terminate() == 0
    assert "scheduler stopped" in worker.output()


def test_a_worker_started_with_no_scheduler_fires_nothing(workers):
    schedule("idle", SchedulerProbe, "* * * * * */2")
    worker = workers.start(1, workflow_modules=MODULES, extra_args=("--no-scheduler",))[0]
    time.sleep(3)
    assert ScheduledRun.objects.count() == 0
    assert "scheduler started" not in worker.output()


def test_once_fires_what_is_due_prints_it_and_returns(db):
    # A yearly cron: no further tick can fall due while the pass runs (with "* * * * *",
    # a run in the last seconds of a minute also fired the next minute's tick).
    schedule("due-now", SchedulerProbe, "0 0 1 1 *")
    due = timezone.now().replace(microsecond=0) - timedelta(seconds=5)
    ScheduledWorkflow.objects.filter(name="due-now").update(next_run_at=due)
    out = StringIO()
    call_command("durable_scheduler", "--once", stdout=out)
    (run,) = ScheduledRun.objects.all()
    assert out.getvalue().split() == ["due-now", due.isoformat(), run.workflow_id]
