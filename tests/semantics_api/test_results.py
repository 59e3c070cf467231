"""Waiting on runs: get_result / aget_result, the async twins, and replayed history."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

import durable
from durable import events, results
from durable.bus import MessageBusError
from durable.bus.memory import InMemoryBus
from durable.testing import run_until_idle
from tests.events.test_lifecycle import EXPECTED, sequence
from tests.events.workflows import TwoSteps
from tests.semantics_api.workflows import Adds, AsksForApproval, Breaks, Countdown, WaitsForGo

pytestmark = pytest.mark.django_db(transaction=True)


def run_inline_in_thread(delay: float = 0.0) -> threading.Thread:
    def run() -> None:
        try:
            time.sleep(delay)
            run_until_idle()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_get_result_returns_the_result_of_a_completed_run():
    wid = durable.start(Adds, {"a": 2, "b": 3})
    run_until_idle()
    assert durable.get_result(wid) == 5
    assert durable.get_result(wid, timeout=0) == 5


def test_get_result_waits_for_a_run_that_finishes_later():
    wid = durable.start(Adds, {"a": 20, "b": 22})
    runner = run_inline_in_thread(delay=0.3)
    try:
        assert durable.get_result(wid, timeout=30) == 42
    finally:
        runner.join(timeout=30)


def test_get_result_raises_workflow_failed_with_the_stored_error():
    wid = durable.start(Breaks, {})
    run_until_idle()
    with pytest.raises(durable.WorkflowFailed, match="ended failed: ValueError: nope") as caught:
        durable.get_result(wid)
    assert caught.value.workflow_id == wid
    assert caught.value.status == "failed"
    assert caught.value.error["type"] == "ValueError"
    assert caught.value.error["message"] == "nope"
    assert caught.value.error == durable.get_execution(wid).error


def test_get_result_of_a_cancelled_run_raises_workflow_failed():
    wid = durable.start(WaitsForGo, {})
    run_until_idle()
    durable.cancel(wid, reason="no longer needed")
    with pytest.raises(durable.WorkflowFailed) as caught:
        durable.get_result(wid, timeout=5)
    assert caught.value.status == "cancelled"


def test_get_result_raises_timeout_error_while_the_run_is_unfinished():
    wid = durable.start(WaitsForGo, {})
    run_until_idle()
    with pytest.raises(TimeoutError, match=f"execution {wid} is still waiting"):
        durable.get_result(wid, timeout=0.2)
    with pytest.raises(TimeoutError):
        durable.get_result(wid, timeout=0)


def test_get_result_refuses_an_unknown_id_and_a_bad_timeout():
    with pytest.raises(durable.ExecutionNotFound, match="no-such-id"):
        durable.get_result("no-such-id", timeout=1)
    wid = durable.start(Adds, {"a": 1, "b": 1})
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="timeout must be a number of seconds"):
            durable.get_result(wid, timeout=bad)


def test_get_result_wakes_on_the_runs_final_event_not_on_a_timer(monkeypatch):
    # No status read is due for ten minutes: only the workflow_completed event can wake it.
    monkeypatch.setattr(results, "RECHECK_SECONDS", 600.0)
    monkeypatch.setattr(results, "POLL_FIRST", 600.0)
    wid = durable.start(Adds, {"a": 1, "b": 2})
    runner = run_inline_in_thread(delay=0.3)
    try:
        assert durable.get_result(wid, timeout=60) == 3
    finally:
        runner.join(timeout=30)


def test_aget_result_returns_raises_and_times_out_like_get_result():
    done = durable.start(Adds, {"a": 4, "b": 4})
    broken = durable.start(Breaks, {})
    waiting = durable.start(WaitsForGo, {})
    run_until_idle()

    async def scenario():
        assert await durable.aget_result(done) == 8
        with pytest.raises(durable.WorkflowFailed, match="nope"):
            await durable.aget_result(broken, timeout=5)
        with pytest.raises(TimeoutError):
            await durable.aget_result(waiting, timeout=0.2)
        with pytest.raises(durable.ExecutionNotFound):
            await durable.aget_result("no-such-id")

    async_to_sync(scenario)()


def test_aget_result_waits_for_a_run_that_finishes_later():
    wid = durable.start(Adds, {"a": 1, "b": 6})
    runner = run_inline_in_thread(delay=0.3)
    try:
        assert async_to_sync(durable.aget_result)(wid, timeout=30) == 7
    finally:
        runner.join(timeout=30)


def test_the_async_twins_do_what_their_originals_do():
    async def scenario():
        wid = await durable.astart(WaitsForGo, {})
        many = await durable.astart_many(Adds, [{"a": 1, "b": 1}, {"a": 2, "b": 2}])
        asker = await durable.astart(AsksForApproval, {})
        execution = await durable.aget_execution(wid)
        return wid, many, asker, execution

    wid, many, asker, execution = async_to_sync(scenario)()
    assert execution.workflow_id == wid
    assert execution.status == "pending"
    run_until_idle()

    async def answer():
        await durable.asend_event(wid, "go", {"now": True})
        pending = await durable.aprovide_input(asker, "approval", "yes")
        return pending

    pending = async_to_sync(answer)()
    assert pending.status == "completed"
    run_until_idle()
    assert durable.get_result(wid) == {"now": True}
    assert durable.get_result(asker) == "yes"
    assert [durable.get_result(w) for w in many] == [2, 4]


def test_the_async_twins_raise_the_originals_errors():
    async def scenario():
        with pytest.raises(durable.WorkflowNotFound):
            await durable.astart("no_such_flow", {})
        with pytest.raises(TypeError, match="input must be a dict"):
            await durable.astart(Adds, [1, 2])
        with pytest.raises(durable.ExecutionNotFound):
            await durable.aget_execution("no-such-id")
        with pytest.raises(durable.ExecutionNotFound):
            await durable.asend_event("no-such-id", "go", {})

    async_to_sync(scenario)()
    assert durable.aget_result.__name__ == "aget_result"
    assert durable.astart.__doc__.startswith("The async twin of `durable.start`")


def test_replay_yields_the_stored_history_of_a_finished_run_in_order():
    wid = durable.start(TwoSteps, {})
    run_until_idle()
    received = list(events.subscribe_workflow(wid, replay=True, timeout=5))
    assert sequence(received) == EXPECTED
    assert all(event["replayed"] for event in received)
    assert {event["workflow_id"] for event in received} == {wid}
    retrying = received[4]
    assert (retrying["attempt"], retrying["error"]["message"]) == (1, "flaky")
    assert received[-1]["status"] == "completed"


def test_without_replay_a_late_subscriber_hears_nothing_of_the_past():
    wid = durable.start(TwoSteps, {})
    run_until_idle()
    assert list(events.subscribe_workflow(wid, timeout=0.3)) == []


def test_replay_then_live_events_without_duplicates():
    wid = durable.start(WaitsForGo, {})
    run_until_idle()  # prepare ran; wait_for_go waits
    stream = events.subscribe_workflow(wid, replay=True, timeout=30)
    durable.send_event(wid, "go", {"n": 1})
    runner = run_inline_in_thread()
    try:
        received = list(stream)
    finally:
        runner.join(timeout=30)
    assert sequence(received) == [
        ("workflow_started", None),
        ("step_started", "prepare"),
        ("step_completed", "prepare"),
        ("step_started", "wait_for_go"),
        ("workflow_waiting", "wait_for_go"),
        ("step_started", "wait_for_go"),
        ("step_completed", "wait_for_go"),
        ("workflow_completed", None),
    ]
    assert [bool(event.get("replayed")) for event in received] == [True] * 5 + [False] * 3


def test_async_replay_yields_the_same_history():
    wid = durable.start(TwoSteps, {})
    run_until_idle()

    async def collect():
        stream = await events.asubscribe_workflow(wid, replay=True, timeout=5)
        return [event async for event in stream]

    assert sequence(async_to_sync(collect)()) == EXPECTED


def test_replay_of_an_unknown_id_raises_and_leaves_no_subscription():
    with pytest.raises(durable.ExecutionNotFound):
        events.subscribe_workflow("no-such-id", replay=True)
    bus = events.get_bus()
    assert events.workflow_topic("no-such-id") not in bus._subscriptions


@pytest.mark.e2e
def test_get_result_of_a_run_on_a_real_worker(workers, monkeypatch):
    if connection.vendor == "postgresql":
        # PostgresBus crosses processes: the worker's NOTIFY must be what wakes the caller.
        monkeypatch.setattr(results, "RECHECK_SECONDS", 600.0)
    wid = durable.start(Adds, {"a": 40, "b": 2})
    broken = durable.start(Breaks, {})
    workers.start(1, workflow_modules="tests.semantics_api.workflows")
    assert durable.get_result(wid, timeout=60) == 42
    with pytest.raises(durable.WorkflowFailed, match="nope"):
        durable.get_result(broken, timeout=60)
    assert async_to_sync(durable.aget_result)(wid, timeout=5) == 42


class UnreachableBus(InMemoryBus):
    """A bus whose transport refuses every subscription (a broker that is down)."""

    def _listen(self, topic):
        raise MessageBusError(f"cannot subscribe to {topic!r}: the server is down")


def test_get_result_polls_when_the_bus_cannot_subscribe(monkeypatch, caplog):
    monkeypatch.setattr(results, "get_bus", UnreachableBus)
    wid = durable.start(Adds, {"a": 3, "b": 4})
    runner = run_inline_in_thread(delay=0.3)
    try:
        assert durable.get_result(wid, timeout=30) == 7
    finally:
        runner.join(timeout=30)
    assert f"get_result({wid}) polls: the bus is unavailable" in caplog.text
    assert async_to_sync(durable.aget_result)(wid, timeout=5) == 7


def test_get_result_follows_a_run_that_continued_as_new_to_the_last_run():
    first = durable.start(Countdown, {"n": 3})
    run_until_idle()
    assert durable.get_execution(first).status == "continued"
    assert durable.get_result(first, timeout=5) == "liftoff"
    assert async_to_sync(durable.aget_result)(first, timeout=5) == "liftoff"
    # The stored history of a continued run ends with its own final event.
    received = list(events.subscribe_workflow(first, replay=True, timeout=5))
    assert sequence(received)[-1] == ("workflow_continued", None)


def test_get_result_waits_across_continuations_that_happen_later():
    first = durable.start(Countdown, {"n": 2})
    runner = run_inline_in_thread(delay=0.3)
    try:
        assert durable.get_result(first, timeout=30) == "liftoff"
    finally:
        runner.join(timeout=30)
