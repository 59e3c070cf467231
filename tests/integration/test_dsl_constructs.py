"""Every DSL construct, run end to end inline against the real database."""

from __future__ import annotations

from typing import Any

import pytest

import durable
from durable.models import StepExecution, Task, WorkflowExecution
from durable.testing import run_until_idle, run_workflow
from tests.integration import workflows as wf
from tests.integration.support import attempts, claim_one, run_next, tasks_of

pytestmark = pytest.mark.django_db


def ran(execution: WorkflowExecution) -> list[str]:
    return list(execution.context.get("ran", []))


def test_step_outputs_are_stored_and_the_last_one_is_the_result() -> None:
    execution = run_workflow(wf.Linear, {"seed": 4})

    assert execution.status == "completed", execution.error
    outputs = {row.step: row.output for row in StepExecution.objects.filter(execution=execution)}
    assert outputs == {
        "first": "first done",
        "second": {"seen_first": 5},
        "third": [5, 50],
    }
    assert execution.result == [5, 50]
    assert execution.context == {"seed": 4, "first": 5, "second": 50, "third": True}
    assert execution.error is None
    assert execution.started_at is not None
    assert execution.completed_at is not None
    assert execution.duration_ms is not None
    assert not Task.objects.filter(execution=execution).exists()


def test_context_is_persisted_after_every_step() -> None:
    import durable

    wid = durable.start(wf.Linear, {"seed": 1})
    stored = WorkflowExecution.objects.get(workflow_id=wid)
    assert stored.context == {"seed": 1}
    assert stored.current_step == "first"

    run_next()
    stored.refresh_from_db()
    assert stored.context == {"seed": 1, "first": 2}
    assert stored.status == "running"
    assert stored.current_step == "second"
    assert [t.step for t in tasks_of(wid)] == ["second"]

    run_next()
    stored.refresh_from_db()
    assert stored.context == {"seed": 1, "first": 2, "second": 20}
    assert stored.current_step == "third"

    run_next()
    stored.refresh_from_db()
    assert stored.context == {"seed": 1, "first": 2, "second": 20, "third": True}
    assert stored.status == "completed"
    assert tasks_of(wid) == []


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("express", ["ship_express", "after_routing"]),
        ("standard", ["ship_standard", "after_routing"]),
        ("unknown", ["after_routing"]),
    ],
)
def test_decision_runs_only_the_matching_branch_then_continues(route, expected) -> None:
    execution = run_workflow(wf.Routed, {"route": route})

    assert execution.status == "completed", execution.error
    assert ran(execution) == expected
    decision = StepExecution.objects.get(execution=execution, step="pick_route")
    assert decision.output == route
    skipped = {"ship_express", "ship_standard"} - set(expected)
    assert not StepExecution.objects.filter(execution=execution, step__in=skipped).exists()


@pytest.mark.parametrize(
    ("value", "branch"),
    [(False, "on_false"), (None, "on_none"), (0, "on_zero"), ("", "on_empty")],
)
def test_falsy_decision_results_match_their_own_when_result(value, branch) -> None:
    execution = run_workflow(wf.FalsyDecision, {"value": value})

    assert execution.status == "completed", execution.error
    assert ran(execution) == [branch, "done"]


def test_falsy_decision_result_without_a_branch_continues_after_the_block() -> None:
    execution = run_workflow(wf.FalsyDecision, {"value": 0.0})

    assert execution.status == "completed", execution.error
    assert ran(execution) == ["done"]


def test_parallel_branches_see_a_snapshot_and_all_their_updates_survive_the_join() -> None:
    execution = run_workflow(wf.Fanned, {})

    assert execution.status == "completed", execution.error
    ctx = execution.context
    # Each branch started from the context as it was before the block...
    assert ctx["a_saw"] == ["counter", "log"]
    assert ctx["b_saw_a"] is False
    assert ctx["b_saw_log"] == []
    assert ctx["c_saw_counter"] == 100
    # ...and every branch's append and increment landed, merged in declaration order.
    assert ctx["log"] == ["a", "b", "c"]
    assert ctx["counter"] == 211
    assert ctx["a_wrote"] == "a"
    assert execution.result == {"log": ["a", "b", "c"], "counter": 211}
    assert execution.fanouts == {}


def test_parallel_branches_are_queued_together_after_the_step_before() -> None:
    import durable

    wid = durable.start(wf.Fanned, {})
    run_next()  # prepare
    assert sorted(t.step for t in tasks_of(wid)) == ["branch_a", "branch_b", "branch_c"]
    # Run the branches in reverse order: the merge still follows declaration order.
    for name in ("branch_c", "branch_b", "branch_a"):
        Task.objects.filter(execution__workflow_id=wid).exclude(step=name).update(priority=-1)
        run_next()
        Task.objects.filter(execution__workflow_id=wid).update(priority=0)
    run_until_idle()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.context["log"] == ["a", "b", "c"]
    assert execution.context["counter"] == 211


def test_foreach_runs_every_item_and_merges_in_item_order() -> None:
    execution = run_workflow(wf.Itemised, {"items": [3, 1, 2]})

    assert execution.status == "completed", execution.error
    assert execution.context["doubled"] == [6, 2, 4]
    assert execution.context["total"] == 6
    assert execution.result == 6
    rows = StepExecution.objects.filter(execution=execution, step="handle_item").order_by(
        "scope_key"
    )
    assert [(r.input, r.output) for r in rows] == [(3, 6), (1, 2), (2, 4)]
    assert len({r.scope_key for r in rows}) == 3


def test_foreach_without_concurrency_queues_every_item_at_once() -> None:
    import durable

    wid = durable.start(wf.Itemised, {"items": [1, 2, 3, 4, 5]})
    assert [t.step for t in tasks_of(wid)] == ["handle_item"] * 5


def test_foreach_with_empty_items_skips_the_body() -> None:
    execution = run_workflow(wf.Itemised, {"items": [], "total": 0})

    assert execution.status == "completed", execution.error
    assert execution.result == 0
    assert not StepExecution.objects.filter(execution=execution, step="handle_item").exists()


def test_foreach_concurrency_limits_items_in_flight() -> None:
    import durable

    wid = durable.start(wf.ItemisedTwoAtATime, {"items": ["a", "b", "c", "d", "e"]})
    in_flight = []
    while tasks_of(wid):
        in_flight.append(len(tasks_of(wid)))
        run_next()
    assert max(in_flight) == 2
    assert in_flight[0] == 2
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.result == ["a", "b", "c", "d", "e"]


def test_loop_runs_while_its_condition_holds() -> None:
    execution = run_workflow(wf.Counting, {"until": 4})

    assert execution.status == "completed", execution.error
    assert execution.context["n"] == 4
    assert execution.result == 4
    rows = attempts(execution.workflow_id, "tick")
    assert sorted(r.output for r in rows) == [1, 2, 3, 4]
    assert len({r.scope_key for r in rows}) == 4


def test_loop_whose_condition_is_false_at_first_never_runs_its_body() -> None:
    execution = run_workflow(wf.Counting, {"until": 0})

    assert execution.status == "completed", execution.error
    assert execution.result == 0
    assert attempts(execution.workflow_id, "tick") == []


def test_loop_max_iterations_guard_fails_the_workflow() -> None:
    execution = run_workflow(wf.Runaway, {})

    assert execution.status == "failed"
    assert "max_iterations=3" in execution.error["message"]
    assert "forever" in execution.error["message"]
    assert execution.context["spins"] == 3
    assert "escaped" not in execution.context
    assert not Task.objects.filter(execution=execution).exists()


@pytest.mark.parametrize(
    ("category", "expected"),
    [("billing", "to_billing"), ("tech", "to_tech"), ("sales", "to_general")],
)
def test_switch_runs_the_matching_case_or_the_default(category, expected) -> None:
    execution = run_workflow(wf.Routing, {"category": category})

    assert execution.status == "completed", execution.error
    assert list(
        StepExecution.objects.filter(execution=execution).values_list("step", flat=True)
    ) == [expected]
    assert execution.result == expected.removeprefix("to_")


def test_async_steps_run_and_their_output_and_writes_are_kept() -> None:
    execution = run_workflow(wf.AsyncSteps, {"n": 7})

    assert execution.status == "completed", execution.error
    assert execution.context["fetched"] == 21
    assert StepExecution.objects.get(execution=execution, step="fetch").output == 21
    assert execution.result == "stored 21"


def test_per_step_queue_puts_the_task_on_that_queue() -> None:
    import durable

    wid = durable.start(wf.QueueHopping, {})
    assert [(t.step, t.queue) for t in tasks_of(wid)] == [("on_default", "default")]
    run_next("default")
    assert [(t.step, t.queue) for t in tasks_of(wid)] == [("on_payments", "payments")]
    assert claim_one("default") is None  # a payments task is not claimed from default
    run_next("payments")
    assert [(t.step, t.queue) for t in tasks_of(wid)] == [("on_high", "high_priority")]
    run_next("high_priority")
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.context["ran"] == ["on_default", "on_payments", "on_high"]


def test_a_routing_function_that_raises_fails_the_workflow_naming_the_block() -> None:
    execution = run_workflow(wf.Routing, {})

    assert execution.status == "failed"
    assert "on= of 'by_category' raised KeyError" in execution.error["message"]
    assert not Task.objects.filter(execution=execution).exists()
    assert not StepExecution.objects.filter(execution=execution).exists()


def test_foreach_items_that_are_not_a_list_fail_the_workflow() -> None:
    execution = run_workflow(wf.Itemised, {"items": "abc"})

    assert execution.status == "failed"
    assert "items= of foreach 'each_item'" in execution.error["message"]


@pytest.mark.parametrize("window", [1, 4, 1000])
def test_a_wide_foreach_keeps_its_branches_in_rows_and_joins_exactly(
    settings: Any, window: int
) -> None:
    from durable.models import FanoutBranch

    settings.DURABLE = {**settings.DURABLE, "FANOUT_WINDOW": window}
    items = list(range(25))
    wid = durable.start(wf.Itemised, {"items": items})
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    (record,) = execution.fanouts.values()
    assert record["limit"] == min(window, len(items))
    parked = FanoutBranch.objects.filter(execution=execution, ops__isnull=True).count()
    assert parked == max(len(items) - window, 0)

    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert execution.context["doubled"] == [i * 2 for i in items]
    assert execution.context["total"] == sum(items)
    assert not FanoutBranch.objects.filter(execution=execution).exists()
