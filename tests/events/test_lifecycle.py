"""Lifecycle events reach Django signal receivers and bus subscribers, in order."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection

import durable
from durable import events, signals
from durable.testing import run_until_idle
from tests.events.workflows import Fails, TwoSteps

EXPECTED = [
    ("workflow_started", None),
    ("step_started", "first"),
    ("step_completed", "first"),
    ("step_started", "second"),
    ("step_retrying", "second"),
    ("step_started", "second"),
    ("step_completed", "second"),
    ("workflow_completed", None),
]


def sequence(received):
    return [(e["event"], e.get("step")) for e in received]


@pytest.mark.django_db(transaction=True)
def test_signals_fire_in_order_after_each_commit():
    received = []

    def receiver(sender, event, **kwargs):
        received.append(event)

    for signal in signals.LIFECYCLE.values():
        signal.connect(receiver)
    try:
        wid = durable.start(TwoSteps, {})
        run_until_idle()
    finally:
        for signal in signals.LIFECYCLE.values():
            signal.disconnect(receiver)
    assert sequence(received) == EXPECTED
    assert {e["workflow_id"] for e in received} == {wid}
    retry = received[4]
    assert retry["attempt"] == 1
    assert retry["error"]["message"] == "flaky"
    assert received[-1]["status"] == "completed"


@pytest.mark.django_db(transaction=True)
def test_the_sender_is_the_workflow_class_so_receivers_can_pick_one_workflow():
    senders, only_two_steps = [], []

    def receiver(sender, event, **kwargs):
        senders.append(sender)

    def two_steps_receiver(sender, event, **kwargs):
        only_two_steps.append(event["workflow_id"])

    signals.workflow_completed.connect(receiver)
    signals.workflow_completed.connect(two_steps_receiver, sender=TwoSteps)
    signals.workflow_failed.connect(receiver)
    try:
        wid = durable.start(TwoSteps, {})
        durable.start(Fails, {})
        run_until_idle()
    finally:
        signals.workflow_completed.disconnect(receiver)
        signals.workflow_completed.disconnect(two_steps_receiver, sender=TwoSteps)
        signals.workflow_failed.disconnect(receiver)
    assert sorted(s.__name__ for s in senders) == ["Fails", "TwoSteps"]
    assert only_two_steps == [wid]


def test_an_event_of_a_workflow_this_process_does_not_know_is_sent_by_workflow():
    event = signals.lifecycle_event("workflow_completed", "w-1", "not_registered_here")
    assert signals.sender_of(event) is durable.Workflow


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_does_not_break_the_workflow():
    def broken(sender, event, **kwargs):
        raise RuntimeError("receiver bug")

    signals.step_completed.connect(broken)
    try:
        wid = durable.start(TwoSteps, {})
        run_until_idle()
    finally:
        signals.step_completed.disconnect(broken)
    assert durable.get_execution(wid).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_subscriber_started_before_the_workflow_runs_gets_every_event_in_order():
    wid = durable.start(TwoSteps, {})
    subscription = events.subscribe_workflow(wid, timeout=30)
    run_until_idle()  # the in-memory bus (SQLite) delivers in process; PostgreSQL by NOTIFY
    assert sequence(subscription) == EXPECTED


@pytest.mark.django_db(transaction=True)
def test_failed_workflow_ends_the_subscription_with_workflow_failed():
    wid = durable.start(Fails, {})
    subscription = events.subscribe_workflow(wid, timeout=30)
    run_until_idle()
    received = list(subscription)
    assert sequence(received)[-2:] == [("step_failed", "only"), ("workflow_failed", None)]
    assert received[-1]["error"]["message"] == "nope"


@pytest.mark.django_db(transaction=True)
def test_custom_events_reach_subscribers_and_lifecycle_names_are_reserved():
    wid = durable.start(TwoSteps, {})
    subscription = events.subscribe_workflow(wid, until_finished=False, timeout=10)
    events.publish_workflow_event(wid, "invoice_sent", {"number": 7})
    first = next(subscription)
    assert (first["event"], first["data"]) == ("invoice_sent", {"number": 7})
    subscription.close()
    with pytest.raises(ValueError, match="lifecycle"):
        events.publish_workflow_event(wid, "workflow_completed", {})
    with pytest.raises(TypeError):
        events.publish_workflow_event(wid, "x", {"bad": {1, 2}})


@pytest.mark.django_db(transaction=True)
def test_async_subscription_receives_the_same_sequence():
    wid = durable.start(TwoSteps, {})
    loop = asyncio.new_event_loop()
    try:
        stream = loop.run_until_complete(events.asubscribe_workflow(wid, timeout=30))
        runner = threading.Thread(target=_run_inline_in_thread)
        runner.start()

        async def collect():
            return [event async for event in stream]

        received = loop.run_until_complete(collect())
        runner.join(timeout=60)
    finally:
        loop.close()
    assert sequence(received) == EXPECTED


def _run_inline_in_thread():
    try:
        run_until_idle()
    finally:
        connection.close()


@pytest.mark.e2e
def test_subscriber_sees_a_real_workers_events_in_order(workers):
    if connection.vendor != "postgresql":
        pytest.skip("the in-memory bus of the SQLite run does not cross processes")
    wid = durable.start(TwoSteps, {})
    subscription = events.subscribe_workflow(wid, timeout=60)
    workers.start(1, workflow_modules="tests.events.workflows")
    assert sequence(subscription) == EXPECTED
