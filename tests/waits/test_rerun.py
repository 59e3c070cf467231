"""Re-run semantics, parallel branches that wait, deadlines and async steps, run inline."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.models import PendingInput, StepExecution
from durable.store import claims
from durable.testing import advance_time, run_until_idle
from tests.waits import workflows as wf
from tests.waits.support import parked, status

pytestmark = pytest.mark.django_db


def run_one() -> str:
    """Claim and run exactly one due task; return its step."""
    (claim,) = claims.claim_tasks("default", 1, worker_id="t", lease_seconds=30, using="default")
    execute(claim, queue_adapter())
    return claim.step


def test_a_side_effect_after_the_last_wait_runs_once_and_earlier_values_replay() -> None:
    wid = durable.start(wf.ReRun, {})
    run_until_idle()
    durable.send_event(wid, "color", "red")
    run_until_idle()
    assert durable.get_execution(wid).status == "waiting"
    durable.provide_input(wid, "size", "L")
    run_until_idle()
    (task,) = parked(wid)
    assert task.wait["kind"] == "sleep"
    assert task.token["waits"] == ["red", "L"]
    advance_time(timedelta(seconds=31))
    run_until_idle()
    durable.send_event(wid, "shape", "circle")
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    # Started once, then once per wait satisfied; the side effect happened once.
    assert wf.TRACE[wid] == ["start"] * 5 + ["effect red L circle"]
    assert execution.context == {"effects": 1, "seen": ["red", "L", "circle"]}
    (attempt,) = StepExecution.objects.filter(execution=execution, step="gather")
    assert (attempt.attempt, attempt.status) == (1, "completed")


def test_waits_satisfied_ahead_of_time_pass_in_one_run() -> None:
    wid = durable.start(wf.ReRun, {})
    durable.send_event(wid, "shape", "square")
    durable.send_event(wid, "color", "blue")
    run_until_idle()
    durable.provide_input(wid, "size", "S")
    run_until_idle()
    advance_time(timedelta(seconds=31))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["seen"] == ["blue", "S", "square"]
    assert wf.TRACE[wid] == ["start"] * 3 + ["effect blue S square"]


def test_parallel_branches_wait_separately_and_the_execution_waits_when_all_are_parked() -> None:
    wid = durable.start(wf.ParallelEvents, {})

    assert run_one() == "left"
    assert status(wid) == "running"  # right and busy can still run
    assert run_one() == "right"
    assert status(wid) == "running"
    assert run_one() == "busy"
    assert status(wid) == "waiting"
    assert {t.step for t in parked(wid)} == {"left", "right"}

    durable.send_event(wid, "right", "R")
    assert run_one() == "right"
    assert status(wid) == "waiting"  # left is still parked
    assert [t.step for t in parked(wid)] == ["left"]

    durable.send_event(wid, "left", "L")
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["joined"] == ["L", "R"]
    assert execution.context["busy"] is True


@pytest.mark.parametrize("kind", ["event", "input"])
def test_the_workflow_timeout_fires_while_a_step_waits_with_no_deadline(kind: str) -> None:
    wid = durable.start(wf.WaitsPastWorkflowTimeout, {"kind": kind})
    run_until_idle()
    execution = durable.get_execution(wid)
    (task,) = parked(wid)
    assert task.run_at == execution.deadline_at

    advance_time(timedelta(seconds=59))
    assert run_until_idle() == 0
    advance_time(timedelta(seconds=2))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.WorkflowTimeout"
    assert not parked(wid)
    assert [i.status for i in PendingInput.objects.filter(execution=execution)] == (
        ["cancelled"] if kind == "input" else []
    )


def test_an_async_step_can_wait() -> None:
    wid = durable.start(wf.AsyncWaits, {})
    run_until_idle()
    assert status(wid) == "waiting", durable.get_execution(wid).error
    durable.send_event(wid, "ping", 1)
    run_until_idle()
    durable.provide_input(wid, "answer", "yes")
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == [1, "yes"]


def test_waits_outside_a_step_run_by_durable_are_refused() -> None:
    from durable.flow.context import Context

    with pytest.raises(RuntimeError, match="only be used inside a step"):
        Context({}).wait_for_event("x")


def test_each_loop_iteration_asks_afresh() -> None:
    wid = durable.start(wf.LoopInputs, {})
    run_until_idle()
    durable.provide_input(wid, "next", "one")
    run_until_idle()
    assert status(wid) == "waiting"  # the second iteration does not reuse the first answer

    durable.provide_input(wid, "next", "two")
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["answers"] == ["one", "two"]


def test_each_foreach_item_waits_for_its_own_event() -> None:
    wid = durable.start(wf.ForeachEvents, {"items": [1, 2, 3]})
    run_until_idle()
    assert len(parked(wid)) == 3
    for item in (3, 1, 2):
        durable.send_event(wid, f"e{item}", item * 10)
        run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == [10, 20, 30]


def test_resume_wakes_every_parked_branch_and_the_data_survives_the_join() -> None:
    wid = durable.start(wf.ParallelEvents, {})
    run_until_idle()
    assert status(wid) == "waiting"

    durable.resume(wid, {"extra": 1})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["joined"] == [{"extra": 1}, {"extra": 1}]
    assert execution.context["extra"] == 1
    assert execution.context["left_saw"] == 1  # a resumed branch sees the merged data


def test_branches_waiting_for_one_event_name_each_consume_their_own_event() -> None:
    wid = durable.start(wf.TwinWaits, {})
    run_until_idle()
    durable.send_event(wid, "go", "a")
    durable.send_event(wid, "go", "b")
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert sorted([execution.context["one"], execution.context["two"]]) == ["a", "b"]
