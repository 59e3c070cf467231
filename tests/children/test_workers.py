"""Child workflows with real worker processes (SQLite or PostgreSQL, per DATABASE_URL)."""

from __future__ import annotations

import pytest

import durable
from durable.models import Task, WorkflowExecution
from durable.testing import assert_workflow_completed, wait_for_finish
from tests.children import workflows as wf
from tests.support.workers import WorkerPool, wait_until

pytestmark = pytest.mark.e2e

MODULES = "tests.children.workflows"


def children_of(wid: str) -> list[WorkflowExecution]:
    return list(WorkflowExecution.objects.filter(parent__workflow_id=wid).order_by("id"))


def test_parents_get_results_and_failures_of_children_on_a_single_worker_slot(
    workers: WorkerPool,
) -> None:
    # One worker running one step at a time: a parent waiting for its child must not hold
    # that slot, or the child would never run.
    workers.start(1, workflow_modules=MODULES, concurrency=1)
    ok = durable.start(wf.Parent, {"n": 4})
    saga = durable.start(wf.Saga, {})
    twice = durable.start(wf.StartThenSleep, {"sleep": 1})
    explicit = durable.start(wf.SetResult, {"value": "chosen"})

    assert assert_workflow_completed(ok, timeout=60).result == {"doubled": 8}

    failed = wait_for_finish(saga, timeout=60)
    assert failed.status == "compensated", workers.logs()
    assert failed.error["type"] == "durable.exceptions.ChildWorkflowFailed"
    assert failed.steps.get(step="reserve", kind="step").status == "compensated"

    # The step ran three times (start, after the sleep, after the children finished) and
    # started its two children once.
    done = assert_workflow_completed(twice, timeout=60)
    assert done.result == [{"doubled": 4}, {"doubled": 6}]
    assert [c.workflow_id for c in children_of(twice)] == done.context["children"]
    assert done.steps.filter(step="delegate").count() == 1

    assert assert_workflow_completed(explicit, timeout=60).result == {"explicit": "chosen"}


def test_cancelling_a_parent_cancels_children_and_grandchildren_on_workers(
    workers: WorkerPool,
) -> None:
    workers.start(1, workflow_modules=MODULES, concurrency=1)
    top = durable.start(wf.Top, {})

    def tree() -> list[WorkflowExecution]:
        rows = [durable.get_execution(top)]
        while len(rows) < 3 and (below := children_of(rows[-1].workflow_id)):
            rows += below
        return rows

    wait_until(
        lambda: [e.status for e in tree()] == ["waiting"] * 3,
        timeout=60,
        message=lambda: f"{[(e.workflow_name, e.status) for e in tree()]}\n{workers.logs()}",
    )
    # Waiting holds no worker: every parked task is unleased.
    parked = Task.objects.filter(execution__in=[e.pk for e in tree()])
    assert [(t.status, t.lease_token) for t in parked] == [("waiting", None)] * 3

    durable.cancel(top, reason="stop")

    assert [e.status for e in tree()] == ["cancelled"] * 3
    assert not Task.objects.exists()
    # The workers go on serving: a new parent still gets its child's result.
    assert assert_workflow_completed(durable.start(wf.Parent, {"n": 1}), timeout=60).result == {
        "doubled": 2
    }


def test_many_parents_and_cancels_racing_with_children_on_two_workers(
    workers: WorkerPool,
) -> None:
    # Children end while their parents park, and cancels land while children end: every
    # wake-up must arrive, and the locks (child before parent) must never deadlock.
    workers.start(2, workflow_modules=MODULES, concurrency=4)
    kept = [durable.start(wf.Parent, {"n": n}) for n in range(10)]
    doomed = [durable.start(wf.StartThenSleep, {"sleep": 0}) for _ in range(10)]
    refused = 0
    for wid in doomed:
        try:
            durable.cancel(wid)
        except durable.InvalidTransition:
            refused += 1  # it finished first

    for n, wid in enumerate(kept):
        assert assert_workflow_completed(wid, timeout=60).result == {"doubled": 2 * n}
    for wid in doomed:
        execution = wait_for_finish(wid, timeout=60)
        children = children_of(wid)
        if execution.status == "cancelled":
            assert all(c.status in ("completed", "cancelled") for c in children)
        else:
            assert execution.status == "completed", execution.error
    assert refused == sum(durable.get_execution(w).status == "completed" for w in doomed)
    assert "Traceback" not in workers.logs()
