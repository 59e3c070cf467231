"""`ctx.continue_as_new` and `ctx.patched` in inline runs and on the step runtime."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

import durable
from durable.engine.waits import StepWaits
from durable.flow.context import Context
from durable.flow.token import Token
from durable.flow.waits import WaitSpec
from durable.models import WorkflowExecution
from durable.store.records import ClaimedTask
from durable.testing import run_until_idle, run_workflow
from tests.semantics import longlived
from tests.semantics import workflows as wf

pytestmark = pytest.mark.django_db


def chain_from(wid: str) -> list[WorkflowExecution]:
    runs = [WorkflowExecution.objects.get(workflow_id=wid)]
    while (successor := runs[-1].continuations.first()) is not None:
        runs.append(successor)
    return runs


def test_continue_as_new_ends_the_run_continued_and_links_a_fresh_one() -> None:
    first = run_workflow(wf.InlineLoop, {"round": 0, "rounds": 3})
    run_until_idle()

    runs = chain_from(first.workflow_id)
    assert [r.status for r in runs] == ["continued"] * 3 + ["completed"]
    assert [r.input["round"] for r in runs] == [0, 1, 2, 3]
    assert runs[-1].result == 3
    for before, after in itertools.pairwise(runs):
        assert after.continued_from_id == before.pk
        assert after.idempotency_key == f"durable:continued:{before.workflow_id}"
        (attempt,) = before.steps.all()
        assert attempt.output == {"continued_as": after.workflow_id}
    # The history does not grow: each run has its one step and starts from its input.
    assert all(r.steps.count() == 1 for r in runs)
    assert all(r.context == {**r.input, "noise": "x" * 100} for r in runs[-1:])
    assert runs[1].context == {"round": 1, "rounds": 3}  # the continued run's writes dropped


def test_continue_as_new_refuses_what_is_not_a_json_dict() -> None:
    execution = run_workflow(wf.InlineBadContinue, {"next": ["not", "a", "dict"]})

    assert execution.status == "failed"
    assert execution.error["type"] == "TypeError"
    assert "continue_as_new() takes the new run's input as a dict" in execution.error["message"]
    assert not execution.continuations.exists()


def test_continue_as_new_in_a_child_workflow_fails_the_child() -> None:
    parent = run_workflow(longlived.ParentOfContinuing, {})
    run_until_idle()
    parent.refresh_from_db()

    child = WorkflowExecution.objects.get(workflow_id=parent.context["child"])
    assert child.status == "failed"
    assert "called ctx.continue_as_new() in a child workflow" in child.error["message"]
    assert parent.status == "failed"
    assert not child.continuations.exists()


def test_continued_shows_among_finished_statuses() -> None:
    first = run_workflow(wf.InlineLoop, {"round": 0, "rounds": 1})

    assert first.status == "continued"
    assert first.is_finished
    assert durable.list_executions(status="continued").count() == 1


def test_patched_is_true_for_a_fresh_run_and_recorded_for_the_rest_of_it() -> None:
    execution = run_workflow(wf.InlinePatched, {})

    assert execution.patches == {"new-pricing": True}
    assert [s.output for s in execution.steps.order_by("id")] == [True, [True, True]]


def claim(**extra: object) -> ClaimedTask:
    fields = {
        "task_id": 1,
        "lease_token": uuid.uuid4(),
        "execution_pk": 1,
        "workflow_id": "wid",
        "workflow_name": "w",
        "kind": "step",
        "step": "ship",
        "token": Token.from_json({"node": "ship"}),
        "attempt": 1,
        "queue": "default",
        "input": {},
        "context": {},
        "deadline_at": None,
        "claimed_at": datetime.now(UTC),
        **extra,
    }
    return ClaimedTask(**fields)  # type: ignore[arg-type]


def test_patched_is_false_in_code_an_earlier_run_passed_before_its_wait() -> None:
    waits = StepWaits(claim(pending_wait=WaitSpec("event", 0, "picked_up")))
    ctx = Context({}, waits=waits)

    assert ctx.patched("before-the-wait") is False
    assert ctx.patched("before-the-wait") is False


def test_patched_is_false_before_recorded_waits_and_true_after_them() -> None:
    waits = StepWaits(claim(recorded_waits=["ups"]))
    ctx = Context({}, waits=waits)

    assert ctx.patched("label") is False
    assert ctx.wait_for_event("picked_up") == "ups"
    assert ctx.patched("express") is True
    assert waits.effects.patches == {"label": False, "express": True}


def test_a_recorded_answer_holds_even_where_the_run_replays() -> None:
    waits = StepWaits(claim(recorded_waits=["ups"], patches={"label": True}))
    ctx = Context({}, waits=waits)

    assert ctx.patched("label") is True
    assert waits.effects.patches == {}


@pytest.mark.parametrize("patch_id", ["", 3, "x" * 201])
def test_patched_refuses_a_bad_id(patch_id: object) -> None:
    ctx = Context({}, waits=StepWaits(claim()))

    with pytest.raises(ValueError, match="patched\\(\\) takes a patch id"):
        ctx.patched(patch_id)  # type: ignore[arg-type]


def test_a_continued_run_cannot_be_retried_its_successor_carries_on() -> None:
    first = run_workflow(wf.InlineLoop, {"round": 0, "rounds": 1})
    successor = first.continuations.get()

    with pytest.raises(
        durable.InvalidTransition, match=f"continued as new run {successor.workflow_id}"
    ):
        durable.retry(first.workflow_id)
    first.refresh_from_db()
    assert first.status == "continued"
