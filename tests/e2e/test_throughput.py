"""The headline: many workflows at once, two workers, every step exactly once."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Count

import durable
from durable.models import FINISHED_STATUSES, StepExecution, Task, WorkflowExecution
from tests.e2e.workflows import ThreeSteps
from tests.support.workers import pid_of, wait_until

pytestmark = pytest.mark.e2e

WORKFLOWS = 200


def test_two_hundred_workflows_on_two_workers_run_every_step_exactly_once(workers):
    first, second = workers.start(2)
    with transaction.atomic():  # all become ready together, at commit
        ids = [durable.start(ThreeSteps, {"n": n}) for n in range(WORKFLOWS)]

    finished = WorkflowExecution.objects.filter(workflow_id__in=ids, status__in=FINISHED_STATUSES)
    wait_until(
        lambda: finished.count() == WORKFLOWS,
        timeout=240,
        message=lambda: f"not every workflow finished\n{workers.logs()[-5000:]}",
    )

    statuses = dict(
        WorkflowExecution.objects.filter(workflow_id__in=ids)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    assert statuses == {"completed": WORKFLOWS}, workers.logs()
    assert all(
        result == 3
        for result in WorkflowExecution.objects.filter(workflow_id__in=ids).values_list(
            "result", flat=True
        )
    )
    rows = StepExecution.objects.filter(execution__workflow_id__in=ids)
    assert rows.count() == 3 * WORKFLOWS
    per_step = rows.values("execution", "step").annotate(n=Count("id"))
    assert {row["n"] for row in per_step} == {1}
    assert len(per_step) == 3 * WORKFLOWS
    assert set(rows.values_list("attempt", flat=True)) == {1}
    assert set(rows.values_list("status", flat=True)) == {"completed"}
    pids = {pid_of(worker_id) for worker_id in rows.values_list("worker_id", flat=True)}
    if connection.vendor == "postgresql":
        assert pids == {first.pid, second.pid}
    else:
        # SQLite has one writer: the worker holding it can claim (and refill) every task
        # before the other gets a turn. Which worker ran them is all that can be asked.
        assert pids <= {first.pid, second.pid}
    assert not Task.objects.filter(execution__workflow_id__in=ids).exists()
    assert "Traceback" not in workers.logs()
