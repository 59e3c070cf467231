"""resume() and cancel() of waiting workflows, run inline."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable.models import PendingInput, Task
from durable.testing import advance_time, run_until_idle
from tests.waits import workflows as wf
from tests.waits.support import events, parked, status, stored, the_input

pytestmark = pytest.mark.django_db


def test_resume_wakes_an_event_wait_with_the_data_and_merges_it_into_the_context() -> None:
    wid = durable.start(wf.WaitThenInput, {"seed": 1})
    run_until_idle()
    assert durable.get_execution(wid).current_step == "first"

    durable.resume(wid, {"extra": 1})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert (execution.status, execution.current_step) == ("waiting", "second")
    assert execution.context == {"seed": 1, "extra": 1, "first": {"extra": 1}}


def test_resume_answers_a_pending_input_with_the_data() -> None:
    wid = durable.start(wf.WaitThenInput, {})
    durable.send_event(wid, "go", "now")
    run_until_idle()

    durable.resume(wid, {"approved": True})
    assert the_input(wid).status == "completed"
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context == {"first": "now", "approved": True, "second": {"approved": True}}
    row = the_input(wid)
    assert (row.status, row.response) == ("completed", {"approved": True})


def test_resume_ends_a_sleep_early() -> None:
    wid = durable.start(wf.SleepFor, {"seconds": 86400})
    run_until_idle()

    durable.resume(wid)
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert wf.TRACE[wid] == ["start", "start", "effect"]


def test_resume_of_a_workflow_that_is_not_waiting_raises_invalid_transition() -> None:
    wid = durable.start(wf.WaitThenInput, {})
    before = stored(wid)
    with pytest.raises(durable.InvalidTransition, match="it is pending, not waiting"):
        durable.resume(wid, {"x": 1})
    assert stored(wid) == before

    done = durable.start(wf.SleepFor, {"seconds": 0})
    run_until_idle()
    with pytest.raises(durable.InvalidTransition, match="it is completed, not waiting"):
        durable.resume(done, {"x": 1})


def test_resume_with_bad_arguments_raises_and_changes_nothing() -> None:
    wid = durable.start(wf.WaitThenInput, {})
    run_until_idle()
    before = stored(wid)

    with pytest.raises(durable.ExecutionNotFound):
        durable.resume("no-such-id", {})
    with pytest.raises(TypeError, match="resume data must be a dict"):
        durable.resume(wid, ["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON"):
        durable.resume(wid, {"x": {1, 2}})
    assert stored(wid) == before


def test_cancel_while_waiting_for_input_cancels_the_input_and_never_wakes() -> None:
    wid = durable.start(wf.WaitThenInput, {})
    durable.send_event(wid, "go", 1)
    run_until_idle()
    assert (status(wid), the_input(wid).status) == ("waiting", "pending")

    durable.cancel(wid, reason="user_cancelled")

    execution = durable.get_execution(wid)
    assert execution.status == "cancelled"
    assert the_input(wid).status == "cancelled"
    assert not Task.objects.filter(execution=execution).exists()
    frozen = stored(wid)
    assert advance_time(timedelta(days=365)) == 0
    for call in (
        lambda: durable.send_event(wid, "go", 2),
        lambda: durable.provide_input(wid, "ok", "yes"),
        lambda: durable.resume(wid, {}),
    ):
        with pytest.raises(durable.InvalidTransition, match="cancelled"):
            call()
    assert run_until_idle() == 0
    assert stored(wid) == frozen
    (step,) = execution.steps.filter(step="second")
    assert step.status == "failed"


def test_cancel_while_sleeping_never_wakes() -> None:
    wid = durable.start(wf.SleepFor, {"seconds": 60})
    run_until_idle()

    durable.cancel(wid)
    advance_time(timedelta(minutes=5))

    assert run_until_idle() == 0
    assert status(wid) == "cancelled"
    assert wf.TRACE[wid] == ["start"]


def test_cancel_while_waiting_for_an_event_keeps_events_sent_earlier_unconsumed() -> None:
    wid = durable.start(wf.TwoSameEvents, {})
    durable.send_event(wid, "tick", 1)
    run_until_idle()

    durable.cancel(wid)

    assert status(wid) == "cancelled"
    assert [e.consumed_at is not None for e in events(wid)] == [True]
    with pytest.raises(durable.InvalidTransition):
        durable.send_event(wid, "tick", 2)
    assert len(events(wid)) == 1
    assert not parked(wid)
    assert PendingInput.objects.count() == 0
