"""Flow control under two real worker processes: the limits live in the database."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from django.db.models import Max, Min

import durable
from durable.models import FINISHED_STATUSES, StepExecution, WorkflowExecution
from tests.flowcontrol import workflows as wf
from tests.support.workers import WorkerPool, wait_until

pytestmark = pytest.mark.e2e

MODULES = "tests.e2e.workflows,tests.flowcontrol.workflows"


def wait_all_finished(workers: WorkerPool, timeout: float) -> None:
    wait_until(
        lambda: not WorkflowExecution.objects.exclude(status__in=FINISHED_STATUSES).exists(),
        timeout=timeout,
        message=lambda: (
            f"unfinished: {list(WorkflowExecution.objects.values_list('status', flat=True))}\n"
            f"{workers.logs()}"
        ),
    )


def running_intervals(workflow: str) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per execution: from its first step's start to its last step's end, by input key."""
    rows = (
        StepExecution.objects.filter(execution__workflow_name=workflow)
        .values("execution_id")
        .annotate(begun=Min("started_at"), ended=Max("completed_at"))
        .values_list("execution_id", "begun", "ended")
    )
    inputs = dict(WorkflowExecution.objects.values_list("id", "input"))
    by_key: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for execution_id, begun, ended in rows:
        key = inputs[execution_id].get("customer") or inputs[execution_id]["region"].lower()
        by_key[key].append((begun, ended))
    return by_key


def most_overlapping(intervals: list[tuple[datetime, datetime]]) -> int:
    most = 0
    for begun, _ in intervals:
        most = max(most, sum(1 for b, e in intervals if b <= begun < e))
    return most


def test_concurrency_limits_hold_across_two_workers(workers: WorkerPool) -> None:
    workers.start(2, concurrency=4, workflow_modules=MODULES)
    for n in range(12):
        customer = ("acme", "globex", "initech")[n % 3]
        durable.start(wf.OnePerCustomer, {"customer": customer, "n": n, "sleep": 0.1})
    for n in range(8):
        durable.start(wf.TwoPerRegion, {"region": ("EU", "us")[n % 2], "sleep": 0.1})

    wait_all_finished(workers, timeout=180)

    assert set(WorkflowExecution.objects.values_list("status", flat=True)) == {"completed"}
    per_customer = running_intervals(wf.OnePerCustomer.definition().name)
    per_region = running_intervals(wf.TwoPerRegion.definition().name)
    assert {k: len(v) for k, v in per_customer.items()} == {"acme": 4, "globex": 4, "initech": 4}
    assert {k: most_overlapping(v) for k, v in per_customer.items()} == {
        "acme": 1,
        "globex": 1,
        "initech": 1,
    }
    assert all(most_overlapping(v) <= 2 for v in per_region.values()), per_region
    # The executions of one customer ran in the order they were started.
    acme = WorkflowExecution.objects.filter(input__customer="acme").order_by("id")
    starts = [e.started_at for e in acme]
    assert starts == sorted(starts)


def test_a_rate_limit_holds_across_two_workers(workers: WorkerPool) -> None:
    workers.start(2, concurrency=4, workflow_modules=MODULES)
    for _ in range(30):
        durable.start(wf.TenPerSecond, {})

    wait_all_finished(workers, timeout=120)

    first_created = WorkflowExecution.objects.aggregate(first=Min("created_at"))["first"]
    starts = sorted(StepExecution.objects.values_list("started_at", flat=True))
    assert len(starts) == 30
    # Every start waits for its slot: the k-th cannot come before k-1 intervals have passed.
    interval = timedelta(milliseconds=100)
    early = [k for k, at in enumerate(starts) if at < first_created + k * interval]
    assert early == [], (early, starts)


def test_a_debounced_burst_runs_once_with_the_last_input(workers: WorkerPool) -> None:
    workers.start(2, concurrency=4, workflow_modules=MODULES)
    ids = {durable.start(wf.QuickReindex, {"document": "d", "version": v}) for v in range(50)}

    assert len(ids) == 1
    wait_all_finished(workers, timeout=60)

    execution = WorkflowExecution.objects.get()
    assert (execution.status, execution.result) == ("completed", 49)
    assert StepExecution.objects.count() == 1
