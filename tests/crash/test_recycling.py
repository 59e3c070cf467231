"""Recycling: `--max-tasks` / `--max-memory` make a worker drain and exit 0, so a process
supervisor starts a fresh one; nothing it claimed is left behind."""

from __future__ import annotations

import pytest
from django.db import transaction

import durable
from durable.models import StepExecution, Task
from durable.testing import assert_workflow_completed
from tests.crash.workflows import QuickSteps
from tests.support.workers import pid_of

pytestmark = pytest.mark.e2e

WORKFLOW_MODULES = "tests.crash.workflows"


def steps_run_by(pid: int) -> list[tuple[str, str]]:
    return [
        (row.step, row.status)
        for row in StepExecution.objects.all()
        if row.worker_id and pid_of(row.worker_id) == pid
    ]


def test_max_tasks_claims_that_many_drains_and_exits_zero(workers):
    with transaction.atomic():  # all ready before the worker's first claim
        ids = [durable.start(QuickSteps, {"pause": 1}) for _ in range(5)]
    (recycled,) = workers.start(
        1, workflow_modules=WORKFLOW_MODULES, extra_args=("--max-tasks", "3")
    )

    assert recycled.process.wait(timeout=60) == 0, recycled.output()

    # Three claimed, and all three ran to their checkpoint (drained, not released).
    assert steps_run_by(recycled.pid) == [("first", "completed")] * 3
    assert "recycling: 3 tasks claimed (--max-tasks 3); draining" in recycled.output()
    assert not Task.objects.exclude(status="ready").exists()
    assert "releasing" not in recycled.output()

    workers.start(1, workflow_modules=WORKFLOW_MODULES)
    for wid in ids:
        assert assert_workflow_completed(wid, timeout=60).result == 3


def test_max_memory_below_the_resident_size_drains_and_exits_zero(workers):
    wid = durable.start(QuickSteps, {"pause": 1})
    (recycled,) = workers.start(
        1, workflow_modules=WORKFLOW_MODULES, extra_args=("--max-memory", "1")
    )

    assert recycled.process.wait(timeout=30) == 0, recycled.output()

    assert "is over --max-memory 1 MB; draining" in recycled.output()
    # It claimed the step in its first round, then finished it before exiting.
    assert steps_run_by(recycled.pid) == [("first", "completed")]
    assert Task.objects.get(execution__workflow_id=wid).step == "second"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-tasks", "0"), "--max-tasks must be > 0"),
        (("--max-tasks", "-3"), "--max-tasks must be > 0"),
        (("--max-tasks", "lots"), "invalid int value: 'lots'"),
        (("--max-memory", "0"), "--max-memory must be > 0"),
        (("--max-memory", "nan"), "--max-memory must be > 0"),
        (("--max-memory", "big"), "invalid float value: 'big'"),
    ],
)
def test_recycling_options_reject_bad_values(workers, args, message):
    result = workers.run_command(*args)

    assert result.returncode != 0
    assert message in result.stderr, result.stderr
