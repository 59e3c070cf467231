"""Sagas: a failed workflow undoes its completed steps, newest first."""

from __future__ import annotations

import pytest

from durable.models import StepExecution
from durable.testing import run_workflow
from tests.integration import workflows as wf
from tests.integration.support import tasks_of

pytestmark = pytest.mark.django_db


def compensation_rows(execution) -> list[tuple[str, int, str]]:
    rows = StepExecution.objects.filter(execution=execution, kind="compensate").order_by("id")
    return [(r.step, r.attempt, r.status) for r in rows]


def step_statuses(execution) -> dict[str, str]:
    rows = StepExecution.objects.filter(execution=execution, kind="step").order_by("id")
    return {r.step: r.status for r in rows}


def test_completed_steps_are_compensated_in_reverse_completion_order() -> None:
    execution = run_workflow(wf.Saga, {})

    assert execution.status == "compensated"
    # charge completed after reserve, so it is undone first; notify has no compensation
    # and ship never completed.
    assert compensation_rows(execution) == [("charge", 1, "completed"), ("reserve", 1, "completed")]
    assert step_statuses(execution) == {
        "reserve": "compensated",
        "notify": "completed",
        "charge": "compensated",
        "ship": "failed",
    }
    assert execution.error["type"] == "RuntimeError"
    assert execution.error["message"] == "carrier unavailable"
    assert "compensation_errors" not in execution.error
    assert execution.completed_at is not None
    assert tasks_of(execution.workflow_id) == []


def test_a_failing_compensation_ends_compensation_failed_keeping_the_original_error() -> None:
    execution = run_workflow(wf.Saga, {"refund_fails": True})

    assert execution.status == "compensation_failed"
    # refund is retried per charge's Retry(max_attempts=2), then release still runs.
    assert compensation_rows(execution) == [
        ("charge", 1, "failed"),
        ("charge", 2, "failed"),
        ("reserve", 1, "completed"),
    ]
    assert execution.error["type"] == "RuntimeError"
    assert execution.error["message"] == "carrier unavailable"
    (problem,) = execution.error["compensation_errors"]
    assert problem["step"] == "charge"
    assert problem["message"] == "refund rejected"
    assert step_statuses(execution)["reserve"] == "compensated"
    assert step_statuses(execution)["charge"] == "completed"
    assert tasks_of(execution.workflow_id) == []


def test_every_failing_compensation_is_reported() -> None:
    execution = run_workflow(wf.Saga, {"refund_fails": True, "release_fails": True})

    assert execution.status == "compensation_failed"
    assert execution.error["message"] == "carrier unavailable"
    assert [(p["step"], p["message"]) for p in execution.error["compensation_errors"]] == [
        ("charge", "refund rejected"),
        ("reserve", "inventory service down"),
    ]


def test_the_last_compensation_failing_still_ends_compensation_failed() -> None:
    execution = run_workflow(wf.Saga, {"release_fails": True})

    assert execution.status == "compensation_failed"
    assert [p["step"] for p in execution.error["compensation_errors"]] == ["reserve"]
    assert step_statuses(execution)["charge"] == "compensated"


def test_foreach_items_are_each_compensated_with_their_own_item() -> None:
    execution = run_workflow(wf.ItemSaga, {"items": ["a", "b", "c"]})

    assert execution.status == "compensated"
    rows = StepExecution.objects.filter(execution=execution, kind="compensate").order_by("id")
    assert sorted(r.input for r in rows) == ["a", "b", "c"]
    assert all(r.output == {"refunded": r.input} for r in rows)
    assert all(r.status == "completed" for r in rows)
    items = StepExecution.objects.filter(execution=execution, step="charge_item", kind="step")
    assert {r.status for r in items} == {"compensated"}


def test_a_failure_without_compensable_steps_ends_failed() -> None:
    execution = run_workflow(wf.DefaultRetries, {})

    assert execution.status == "failed"
    assert compensation_rows(execution) == []


def test_a_failed_parallel_branch_compensates_the_completed_sibling() -> None:
    execution = run_workflow(wf.ParallelSaga, {})

    assert execution.status == "compensated"
    assert execution.error["message"] == "right failed"
    assert compensation_rows(execution) == [("left", 1, "completed")]
    assert step_statuses(execution) == {"left": "compensated", "right": "failed"}
    assert "after_both" not in execution.context
    assert execution.fanouts == {}


def test_a_sibling_still_running_when_its_branch_fails_is_discarded_not_compensated() -> None:
    import durable
    from durable.engine.adapters import queue_adapter
    from durable.engine.executor import execute
    from tests.integration.support import claim_one, run_next

    wid = durable.start(wf.ParallelSaga, {})
    left = claim_one()
    assert left is not None
    assert left.step == "left"
    run_next()  # right fails while left is still running elsewhere
    execute(left, queue_adapter())  # left finishes late: its lease is gone

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert compensation_rows(execution) == []
    (row,) = StepExecution.objects.filter(execution=execution, step="left")
    assert (row.status, row.error["type"]) == ("failed", "Interrupted")
    assert "left" not in execution.context
    assert tasks_of(wid) == []


def test_a_compensation_no_worker_can_run_ends_compensation_failed(monkeypatch) -> None:
    import durable
    from durable.dsl import registry
    from durable.exceptions import WorkflowNotFound
    from durable.testing import run_until_idle
    from tests.integration.support import run_next

    wid = durable.start(wf.Saga, {})
    for _ in range(4):  # reserve, notify, charge, ship (fails)
        run_next()
    assert durable.get_execution(wid).status == "compensating"

    def unknown(name: str):
        raise WorkflowNotFound(f"no workflow named {name!r}")

    monkeypatch.setattr(registry, "get", unknown)
    run_until_idle(max_tasks=5)

    execution = durable.get_execution(wid)
    assert execution.status == "compensation_failed"
    assert execution.error["message"] == "carrier unavailable"
    (problem,) = execution.error["compensation_errors"]
    assert problem["step"] == "charge"
    assert "cannot run compensate 'charge'" in problem["message"]
    assert tasks_of(wid) == []
