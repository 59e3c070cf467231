"""Work is claimed per step: one workflow's steps spread over workers and queues."""

from __future__ import annotations

import pytest

import durable
from durable.models import StepExecution, Task
from durable.testing import assert_workflow_completed
from tests.e2e.workflows import FanOutAcrossWorkers, PaymentsRouting, ThreeSteps
from tests.support.workers import pid_of, wait_until

pytestmark = pytest.mark.e2e


def worker_pids(workflow_id: str, *steps: str) -> set[int]:
    rows = StepExecution.objects.filter(execution__workflow_id=workflow_id, step__in=steps)
    return {pid_of(worker_id) for worker_id in rows.values_list("worker_id", flat=True)}


def test_parallel_branches_and_foreach_items_run_on_different_workers(workers):
    # One step at a time per worker: two runs in flight together are on two workers.
    first, second = workers.start(2, concurrency=1)
    wid = durable.start(FanOutAcrossWorkers, {"items": [1, 2, 3, 4]})

    execution = assert_workflow_completed(wid, timeout=90)

    assert execution.context["worked"] == [1, 2, 3, 4]
    assert worker_pids(wid, "left", "right") == {first.pid, second.pid}, workers.logs()
    assert worker_pids(wid, "work_item") == {first.pid, second.pid}, workers.logs()


def test_payments_step_waits_for_a_worker_serving_the_payments_queue(workers):
    (default_worker,) = workers.start(1, queues="default")
    wid = durable.start(PaymentsRouting, {})

    wait_until(
        lambda: Task.objects.filter(execution__workflow_id=wid, step="charge_card").exists(),
        timeout=30,
        message=lambda: f"charge_card was never queued\n{workers.logs()}",
    )
    # The default worker keeps claiming (it runs a whole later workflow) but never the
    # payments step.
    assert_workflow_completed(durable.start(ThreeSteps, {}), timeout=30)
    execution = durable.get_execution(wid)
    assert execution.status == "running"
    assert not execution.steps.filter(step="charge_card").exists()
    assert Task.objects.get(execution=execution, step="charge_card").status == "ready"

    (payments_worker,) = workers.start(1, queues="payments")
    execution = assert_workflow_completed(wid, timeout=60)

    assert execution.context == {"prepared": True, "charged": True, "receipt": True}
    assert worker_pids(wid, "charge_card") == {payments_worker.pid}
    assert worker_pids(wid, "prepare", "send_receipt") == {default_worker.pid}
