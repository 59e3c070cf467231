"""Every DSL construct, run by real worker processes."""

from __future__ import annotations

import pytest

import durable
from durable.models import StepExecution
from durable.testing import assert_workflow_completed, assert_workflow_failed
from tests.e2e.workflows import BookTrip, EveryConstruct

pytestmark = pytest.mark.e2e


def completed_steps(execution) -> set[str]:
    return set(
        execution.steps.filter(status="completed", kind="step").values_list("step", flat=True)
    )


def max_overlap(rows: list[StepExecution]) -> int:
    """The largest number of runs whose [started_at, completed_at] intervals overlap."""
    events = sorted(
        [(row.started_at, 1) for row in rows] + [(row.completed_at, -1) for row in rows],
        key=lambda event: (event[0], event[1]),
    )
    running = highest = 0
    for _, change in events:
        running += change
        highest = max(highest, running)
    return highest


def test_every_construct_runs_on_two_workers_taking_the_big_eu_paths(workers):
    workers.start(2)
    wid = durable.start(EveryConstruct, {"amount": 500, "region": "eu", "items": [1, 2, 3, 4, 5]})

    execution = assert_workflow_completed(wid, timeout=60)

    assert execution.result == {"size": "big", "route": "eu", "total": 15}, workers.logs()
    context = execution.context
    assert sorted(context["notified"]) == ["async", "sync"]
    assert context["handled"] == [1, 2, 3, 4, 5]  # merged at the join in item order
    assert context["polls"] == 3
    assert context["flaky_succeeded_on"] == 3
    ran = completed_steps(execution)
    assert {
        "classify",
        "handle_big",
        "notify_sync",
        "notify_async",
        "handle_item",
        "poll_once",
        "route_eu",
        "flaky_call",
        "summarise",
    } <= ran
    assert not ran & {"handle_small", "route_elsewhere"}
    assert execution.steps.get(step="notify_async").output == "sent"
    items = list(execution.steps.filter(step="handle_item").order_by("output"))
    assert [row.output for row in items] == [10, 20, 30, 40, 50]
    assert max_overlap(items) <= 2  # foreach(concurrency=2)
    assert execution.steps.filter(step="poll_once", status="completed").count() == 3


def test_every_construct_takes_the_small_branch_and_the_switch_default(workers):
    workers.start(1)
    wid = durable.start(EveryConstruct, {"amount": 5, "region": "us", "items": [7]})

    execution = assert_workflow_completed(wid, timeout=60)

    assert execution.result == {"size": "small", "route": "elsewhere", "total": 7}
    ran = completed_steps(execution)
    assert {"handle_small", "route_elsewhere"} <= ran
    assert not ran & {"handle_big", "route_eu"}


def test_retry_then_success_records_each_attempt(workers):
    workers.start(1)
    wid = durable.start(EveryConstruct, {"amount": 5, "region": "us", "items": []})

    execution = assert_workflow_completed(wid, timeout=60)

    attempts = list(
        execution.steps.filter(step="flaky_call")
        .order_by("attempt")
        .values_list("attempt", "status")
    )
    assert attempts == [(1, "failed"), (2, "failed"), (3, "completed")]
    first = execution.steps.get(step="flaky_call", attempt=1)
    assert first.error["type"] == "ConnectionError"


def test_failed_saga_compensates_completed_steps_in_reverse_order(workers):
    workers.start(2)
    wid = durable.start(BookTrip, {})

    execution = assert_workflow_failed(wid, timeout=60)

    assert execution.status == "compensated", (execution.error, workers.logs())
    assert "ticket printer" in execution.error["message"]
    compensations = list(
        execution.steps.filter(kind="compensate")
        .order_by("completed_at", "id")
        .values_list("step", "status")
    )
    assert compensations == [("charge", "completed"), ("reserve_seat", "completed")]
    assert set(
        execution.steps.filter(kind="step", step__in=["charge", "reserve_seat"]).values_list(
            "status", flat=True
        )
    ) == {"compensated"}
    tickets = list(execution.steps.filter(step="issue_ticket").values_list("attempt", "status"))
    assert sorted(tickets) == [(1, "failed"), (2, "failed")]
