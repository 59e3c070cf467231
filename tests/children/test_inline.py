"""Child workflows and results, run inline (durable.testing) in the test's thread."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable.flow.context import Context
from durable.models import WorkflowExecution
from durable.serialization import NotJSONError
from durable.testing import advance_time, run_until_idle, run_workflow
from tests.children import workflows as wf

pytestmark = pytest.mark.django_db(transaction=True)


def children_of(wid: str) -> list[WorkflowExecution]:
    return list(WorkflowExecution.objects.filter(parent__workflow_id=wid).order_by("id"))


def test_the_parent_gets_the_childs_result() -> None:
    parent = run_workflow(wf.Parent, {"n": 21})

    assert parent.status == "completed", parent.error
    (child,) = children_of(parent.workflow_id)
    assert child.workflow_id == parent.context["child"]
    assert child.workflow_name == "cw_double"
    assert child.input == {"n": 21, "fail": None}
    assert child.result == {"doubled": 42}
    assert parent.context["child_result"] == {"doubled": 42}
    assert parent.result == {"doubled": 42}
    assert list(parent.children.all()) == [child]


def test_a_failed_child_raises_in_the_parent_carrying_its_id_status_and_error() -> None:
    parent = run_workflow(wf.CatchFailure, {})

    assert parent.status == "completed", parent.error
    caught = parent.context["caught"]
    assert caught["id"] == parent.context["child"]
    assert caught["status"] == "failed"
    assert caught["error"]["message"] == "cannot double 1"


def test_a_failed_child_fails_the_step_and_compensation_runs() -> None:
    parent = run_workflow(wf.Saga, {})

    assert parent.status == "compensated"
    assert parent.steps.get(step="reserve", kind="step").status == "compensated"
    assert parent.error["type"] == "durable.exceptions.ChildWorkflowFailed"
    (child,) = children_of(parent.workflow_id)
    assert child.status == "failed"
    assert f"child workflow {child.workflow_id} ended failed" in parent.error["message"]


def test_a_retry_of_the_step_starts_a_new_child() -> None:
    parent = run_workflow(wf.RetryWithNewChild, {})

    assert parent.status == "completed", parent.error
    first, second = children_of(parent.workflow_id)
    assert [first.status, second.status] == ["failed", "completed"]
    assert parent.result == {"doubled": 10}


def test_a_step_that_runs_again_after_waits_starts_its_children_once() -> None:
    wid = durable.start(wf.StartThenSleep, {"sleep": 60})
    run_until_idle()
    first = children_of(wid)
    assert [c.status for c in first] == ["completed", "completed"]
    assert durable.get_execution(wid).status == "waiting"

    advance_time(timedelta(seconds=61))
    run_until_idle()

    parent = durable.get_execution(wid)
    assert parent.status == "completed", parent.error
    assert children_of(wid) == first
    assert parent.context["children"] == [c.workflow_id for c in first]
    assert parent.result == [{"doubled": 4}, {"doubled": 6}]


def test_a_child_that_finished_before_the_parent_waits_is_returned_at_once() -> None:
    wid = durable.start(wf.TwoSteps, {})
    run_until_idle()
    (child,) = children_of(wid)
    assert child.status == "completed"
    assert durable.get_execution(wid).status == "waiting"

    durable.send_event(wid, "go", None)
    run_until_idle()

    parent = durable.get_execution(wid)
    assert parent.status == "completed", parent.error
    assert parent.result == {"doubled": 14}


def test_resume_satisfies_a_wait_for_a_child() -> None:
    wid = durable.start(wf.Middle, {})
    run_until_idle()
    assert durable.get_execution(wid).status == "waiting"

    durable.resume(wid, {"skipped": True})
    run_until_idle()

    assert durable.get_execution(wid).status == "completed"
    (child,) = children_of(wid)
    assert child.status == "waiting"  # resuming the parent leaves its child alone


def test_cancelling_a_parent_cancels_its_children_and_grandchildren() -> None:
    top = durable.start(wf.Top, {})
    run_until_idle()
    (middle,) = children_of(top)
    (leaf,) = children_of(middle.workflow_id)
    assert [middle.status, leaf.status] == ["waiting", "waiting"]

    durable.cancel(top, reason="not needed")

    assert durable.get_execution(top).status == "cancelled"
    for child in (middle, leaf):
        child.refresh_from_db()
        assert child.status == "cancelled"
        assert child.error["message"] == f"an ancestor workflow ({top}) was cancelled: not needed"
        assert not child.tasks.exists()
    run_until_idle()
    assert WorkflowExecution.objects.filter(status="cancelled").count() == 3


def test_cancelling_a_child_leaves_its_parent_and_fails_the_parents_wait() -> None:
    middle = durable.start(wf.Middle, {})
    run_until_idle()
    (leaf,) = children_of(middle)

    durable.cancel(leaf.workflow_id)
    run_until_idle()

    parent = durable.get_execution(middle)
    assert parent.status == "waiting"
    # Middle's step raised ChildWorkflowFailed; its retries each start (and wait for) a new
    # child, so it is waiting again on a fresh one.
    steps = parent.steps.order_by("id")
    assert steps[0].error["type"] == "durable.exceptions.ChildWorkflowFailed"
    assert "ended cancelled" in steps[0].error["message"]
    assert len(children_of(middle)) == 2


def test_set_result_wins_over_the_last_steps_output() -> None:
    assert run_workflow(wf.SetResult, {"value": [1, 2]}).result == {"explicit": [1, 2]}
    assert run_workflow(wf.LastOutput, {}).result == {"last": True}
    assert durable.get_execution(run_workflow(wf.LastOutput).workflow_id).result == {"last": True}


@pytest.mark.parametrize(
    ("how", "error_type", "message"),
    [
        ("unknown_workflow", "durable.exceptions.WorkflowNotFound", "cw_no_such_workflow"),
        ("not_json", "durable.serialization.NotJSONError", "child input"),
        ("not_a_dict", "TypeError", "child input must be a dict"),
        ("unknown_queue", "ValueError", "queue 'nowhere' is not configured"),
        ("not_a_child", "ValueError", "is not a child of this workflow"),
    ],
)
def test_a_bad_child_call_fails_the_step_with_a_clear_error(
    how: str, error_type: str, message: str
) -> None:
    other = durable.start(wf.Forever, {})
    parent = run_workflow(wf.BadChild, {"how": how, "other": other})

    assert parent.status == "failed"
    assert parent.error["type"] == error_type
    assert message in parent.error["message"]
    assert children_of(parent.workflow_id) == []


def test_set_result_takes_json_only() -> None:
    ctx = Context({})
    with pytest.raises(NotJSONError, match="result"):
        ctx.set_result({1, 2})
    assert ctx.ops == []
    with pytest.raises(RuntimeError, match="start_child"):
        ctx.start_child(wf.Double, {})


def test_an_async_step_starts_and_waits_for_a_child() -> None:
    parent = run_workflow(wf.AsyncParent, {"n": 8})
    assert parent.status == "completed", parent.error
    assert parent.result == {"doubled": 16}


def test_a_wait_for_a_child_times_out() -> None:
    wid = durable.start(wf.WaitWithTimeout, {})
    run_until_idle()
    assert durable.get_execution(wid).status == "waiting"

    advance_time(timedelta(seconds=61))
    run_until_idle()

    parent = durable.get_execution(wid)
    assert parent.status == "failed"
    assert parent.error["type"] == "durable.exceptions.WaitTimeout"
    (child,) = children_of(wid)
    assert child.status == "waiting"


def test_children_inherit_the_parents_priority_and_outlive_a_finished_parent() -> None:
    parent = run_workflow(wf.FireAndForget, {}, priority=7)

    assert parent.status == "completed"
    (child,) = children_of(parent.workflow_id)
    assert (child.status, child.priority) == ("waiting", 7)
    with pytest.raises(durable.InvalidTransition):
        durable.cancel(parent.workflow_id)
    child.refresh_from_db()
    assert child.status == "waiting"


def test_a_step_that_fails_does_not_set_the_result() -> None:
    execution = run_workflow(wf.FailAfterSetResult, {})
    assert execution.status == "failed"
    assert execution.result == "from first"
