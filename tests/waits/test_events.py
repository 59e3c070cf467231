"""wait_for_event, run inline: delivery, filters, events sent early, order, timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable
from durable.models import StepExecution, Task
from durable.testing import advance_time, run_until_idle
from tests.waits import workflows as wf
from tests.waits.support import events, parked, status, stored

pytestmark = pytest.mark.django_db


def test_an_event_wakes_the_waiting_step_with_its_payload() -> None:
    wid = durable.start(wf.OneEvent, {})
    run_until_idle()
    assert status(wid) == "waiting"
    (task,) = parked(wid)
    assert (task.wait["kind"], task.wait["name"], task.run_at.year) == ("event", "ping", 9000)

    durable.send_event(wid, "ping", {"payment_id": "pay_123"})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == {"payment_id": "pay_123"}
    assert execution.result == {"payment_id": "pay_123"}
    (event,) = events(wid)
    assert event.consumed_at is not None
    assert event.consumed_by.startswith("wait@")


def test_an_event_of_another_name_does_not_wake_the_step() -> None:
    wid = durable.start(wf.OneEvent, {})
    run_until_idle()

    durable.send_event(wid, "pong", 1)
    assert run_until_idle() == 0
    assert status(wid) == "waiting"
    assert events(wid)[0].consumed_at is None


def test_an_event_sent_before_the_wait_is_reached_is_delivered_there() -> None:
    wid = durable.start(wf.OneEvent, {})
    durable.send_event(wid, "ping", "early")  # the execution has not started yet
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == "early"


def test_a_filter_skips_events_that_do_not_match_and_leaves_them_unconsumed() -> None:
    wid = durable.start(wf.OneEvent, {"order_id": 1})
    run_until_idle()

    durable.send_event(wid, "ping", {"order_id": 2})
    run_until_idle()  # woken, looked, parked again
    assert status(wid) == "waiting"
    assert len(parked(wid)) == 1

    durable.send_event(wid, "ping", {"order_id": 1, "n": "mine"})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == {"order_id": 1, "n": "mine"}
    other, mine = events(wid)
    assert other.consumed_at is None
    assert mine.consumed_at is not None


def test_events_that_match_no_filter_stay_for_a_later_wait() -> None:
    wid = durable.start(wf.FilteredThenAny, {"order_id": 1})
    durable.send_event(wid, "paid", {"order_id": 2})
    durable.send_event(wid, "paid", {"order_id": 1})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["mine"] == {"order_id": 1}
    assert execution.context["leftover"] == {"order_id": 2}
    assert all(e.consumed_at is not None for e in events(wid))


def test_a_leftover_event_arriving_while_the_later_wait_parks_is_taken() -> None:
    wid = durable.start(wf.FilteredThenAny, {"order_id": 1})
    durable.send_event(wid, "paid", {"order_id": 1})
    run_until_idle()
    assert (status(wid), durable.get_execution(wid).current_step) == ("waiting", "leftover")

    durable.send_event(wid, "paid", {"order_id": 9})
    run_until_idle()

    assert durable.get_execution(wid).context["leftover"] == {"order_id": 9}


def test_two_waits_on_one_name_consume_two_events_in_order() -> None:
    wid = durable.start(wf.TwoSameEvents, {})
    run_until_idle()
    durable.send_event(wid, "tick", 1)
    run_until_idle()
    assert status(wid) == "waiting"

    durable.send_event(wid, "tick", 2)
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["ticks"] == [1, 2]


def test_two_events_sent_ahead_are_consumed_in_the_order_they_were_sent() -> None:
    wid = durable.start(wf.TwoSameEvents, {})
    for n in ("a", "b", "c"):
        durable.send_event(wid, "tick", n)
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.context["ticks"] == ["a", "b"]
    assert [e.consumed_at is not None for e in events(wid)] == [True, True, False]


def test_an_event_wait_times_out_without_a_value_by_raising_wait_timeout() -> None:
    wid = durable.start(wf.OneEvent, {"timeout": 60})
    run_until_idle()
    (task,) = parked(wid)
    assert task.run_at.year < 9000

    advance_time(timedelta(seconds=59))
    assert run_until_idle() == 0
    advance_time(timedelta(seconds=2))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.WaitTimeout"
    assert execution.error["message"] == "event 'ping' timed out"
    (attempt,) = StepExecution.objects.filter(execution=execution, step="wait")
    assert attempt.status == "failed"


def test_an_event_wait_times_out_with_a_value_by_returning_it() -> None:
    wid = durable.start(wf.OneEvent, {"timeout": 60, "timeout_value": {"paid": False}})
    run_until_idle()
    advance_time(timedelta(seconds=61))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["got"] == {"paid": False}


def test_a_wait_timeout_is_retried_then_compensated_like_any_failure() -> None:
    wid = durable.start(wf.EventTimeoutSaga, {})
    run_until_idle()
    assert status(wid) == "waiting"

    advance_time(timedelta(seconds=61))
    run_until_idle()  # attempt 1 times out; attempt 2 waits afresh
    assert status(wid) == "waiting"
    (task,) = parked(wid)
    assert task.attempt == 2
    advance_time(timedelta(seconds=59))
    assert run_until_idle() == 0  # the second attempt has its own 60 s

    advance_time(timedelta(seconds=2))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "compensated"
    assert execution.error["type"] == "durable.exceptions.WaitTimeout"
    tries = StepExecution.objects.filter(execution=execution, step="await_payment", kind="step")
    assert sorted(tries.values_list("attempt", "status")) == [(1, "failed"), (2, "failed")]
    (undo,) = StepExecution.objects.filter(execution=execution, kind="compensate")
    assert (undo.step, undo.status) == ("reserve", "completed")


def test_an_event_for_an_unknown_execution_raises_and_writes_nothing() -> None:
    with pytest.raises(durable.ExecutionNotFound):
        durable.send_event("no-such-id", "ping", 1)


@pytest.mark.parametrize(("name", "payload"), [("", 1), (None, 1), ("ping", {1, 2})])
def test_a_bad_event_is_refused_and_changes_nothing(name, payload) -> None:
    wid = durable.start(wf.OneEvent, {})
    run_until_idle()
    before = stored(wid)

    with pytest.raises((ValueError, TypeError)):
        durable.send_event(wid, name, payload)
    assert stored(wid) == before
    assert Task.objects.count() == 1


def test_a_caught_wait_timeout_stays_timed_out_when_the_step_runs_again() -> None:
    wid = durable.start(wf.CatchTimeout, {})
    run_until_idle()
    advance_time(timedelta(seconds=11))
    run_until_idle()
    (task,) = parked(wid)
    assert (task.wait["name"], task.wait["index"]) == ("b", 1)

    durable.send_event(wid, "a", "too late")
    durable.send_event(wid, "b", "B")
    run_until_idle()
    advance_time(timedelta(seconds=11))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context == {"a": "timed out", "b": "B", "c": "default"}
    assert wf.TRACE[wid] == ["start"] * 4
    late, b = events(wid)
    assert (late.consumed_at, b.consumed_at is not None) == (None, True)


@pytest.mark.parametrize("name", ["x" * 201, "", 7])
def test_a_wait_name_that_cannot_be_stored_fails_the_step_clearly(name: object) -> None:
    wid = durable.start(wf.OneEvent, {"event": name})
    run_until_idle(max_tasks=20)

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert "a wait needs a non-empty name of at most 200 characters" in execution.error["message"]
