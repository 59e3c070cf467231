"""The queue adapter contract (SPEC §6), the same tests for every adapter on its real
server: priority order, delayed work, ack / nack / reschedule, exclusive claims, work
taken over after a consumer dies, pausing, stale messages, and (brokers) reconciliation
after the broker lost its messages."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import durable
from durable import queues
from durable.engine.executor import execute
from durable.engine.reconciler import Reconciler
from durable.models import Task
from durable.queue.base import QueueAdapter
from durable.queue.broker import BrokerQueue
from durable.store import claims
from durable.store.outbox import ReadyTask
from durable.store.records import ClaimedTask
from tests.integration import workflows as wf
from tests.queue.brokers import lose_messages
from tests.queue.conftest import BROKERS, MakeAdapter

WORKER = "contract-worker"
# Tests of what only message brokers do (the database adapters carry no messages).
brokers_only = pytest.mark.parametrize("adapter_name", BROKERS)


def claim_within(
    adapter: QueueAdapter, *, queue: str = "default", limit: int = 1, timeout: float = 10
) -> list[ClaimedTask]:
    """Claim as a worker does (claim, then wait for work), until something is claimed."""
    deadline = time.monotonic() + timeout
    wake = threading.Event()
    while True:
        found = adapter.claim(queue, limit, worker_id=WORKER, lease_seconds=30)
        if found or time.monotonic() >= deadline:
            return found
        adapter.wait_for_work([queue], 0.2, wake)


def claim_nothing_for(adapter: QueueAdapter, seconds: float, queue: str = "default") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = adapter.claim(queue, 10, worker_id=WORKER, lease_seconds=30)
        assert found == [], f"claimed {[c.step for c in found]} but expected nothing"
        adapter.wait_for_work([queue], 0.1, threading.Event())


def test_claims_highest_priority_first(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    if not adapter.capabilities.supports_priority:
        pytest.skip(f"{type(adapter).__name__} declares supports_priority=False")
    low = durable.start(wf.OneStep, {}, priority=0)
    high = durable.start(wf.OneStep, {}, priority=5)
    middle = durable.start(wf.OneStep, {}, priority=1)

    order = [claim_within(adapter)[0].workflow_id for _ in range(3)]

    assert order == [high, middle, low]


def test_delayed_work_is_claimed_only_once_due(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    due_at = timezone.now() + timedelta(seconds=1.5)
    wid = durable.start(wf.OneStep, {}, scheduled_at=due_at)

    claim_nothing_for(adapter, 0.8)
    claimed = claim_within(adapter, timeout=10)

    assert [c.workflow_id for c in claimed] == [wid]
    assert claimed[0].claimed_at >= due_at


def test_ack_after_checkpoint_hands_out_the_next_step_only(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    wid = durable.start(wf.TwoSteps, {})

    first = claim_within(adapter)
    execute(first[0], adapter)  # checkpoints, then acks
    second = claim_within(adapter)
    execute(second[0], adapter)

    assert [first[0].step, second[0].step] == ["step_one", "step_two"]
    claim_nothing_for(adapter, 0.5)
    assert durable.get_execution(wid).status == "completed"


def test_nack_hands_the_task_to_another_consumer(make_adapter: MakeAdapter) -> None:
    first, second = make_adapter(), make_adapter()
    wid = durable.start(wf.OneStep, {"echo": 1})

    claim = claim_within(first)[0]
    first.nack(claim)
    retaken = claim_within(second)

    assert [c.task_id for c in retaken] == [claim.task_id]
    assert retaken[0].attempt == claim.attempt  # a released claim costs no attempt
    execute(retaken[0], second)
    assert durable.get_execution(wid).status == "completed"


def test_a_retry_is_rescheduled_for_its_backoff(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    wid = durable.start(wf.FlakyFast, {})  # fails twice, 0.4 s then 0.8 s backoff

    first = claim_within(adapter)[0]
    # The backoff runs from the checkpoint's clock, read after this one (a loaded machine
    # may take a while between the checkpoint and execute's return).
    before = timezone.now()
    execute(first, adapter)  # fails: rescheduled 0.4 s later
    second = claim_within(adapter)[0]

    assert second.task_id == first.task_id
    assert second.attempt == 2
    assert second.claimed_at >= before + timedelta(seconds=0.4)
    execute(second, adapter)
    execute(claim_within(adapter)[0], adapter)
    assert durable.get_execution(wid).status == "completed"


def test_two_consumers_never_hold_the_same_task(make_adapter: MakeAdapter) -> None:
    consumers = [make_adapter(), make_adapter()]
    started = {durable.start(wf.OneStep, {"echo": n}) for n in range(20)}
    held: dict[int, int] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def consume(index: int) -> None:
        try:
            claim_until_all_held(consumers[index], index)
        finally:
            connection.close()  # this thread's own database connection

    def claim_until_all_held(adapter: QueueAdapter, index: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if len(held) == len(started):
                    return
            for claim in adapter.claim("default", 3, worker_id=f"c{index}", lease_seconds=30):
                with lock:
                    if claim.task_id in held:
                        errors.append(f"task {claim.task_id} claimed twice")
                    held[claim.task_id] = index
            adapter.wait_for_work(["default"], 0.05, threading.Event())

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(held) == len(started)


def test_a_dead_consumers_task_is_taken_over_after_its_lease(make_adapter: MakeAdapter) -> None:
    dead, alive = make_adapter(), make_adapter()
    durable.start(wf.OneStep, {})
    claim = dead.claim("default", 1, worker_id="dead", lease_seconds=0.5) or claim_within(dead)
    # The consumer dies: no ack, no nack, no heartbeat. Its lease expires and a worker's
    # housekeeping makes the task ready again.
    time.sleep(0.6)
    assert claims.reap_expired_leases(using="default") == 1

    retaken = claim_within(alive)

    assert [c.task_id for c in retaken] == [claim[0].task_id]
    assert retaken[0].expiries == 1


def test_a_paused_queue_hands_out_nothing_until_resumed(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    queues.pause("default")
    wid = durable.start(wf.OneStep, {})

    claim_nothing_for(adapter, 0.5)
    queues.resume("default")

    assert [c.workflow_id for c in claim_within(adapter)] == [wid]


@brokers_only
def test_a_message_for_a_finished_or_missing_task_is_dropped(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, BrokerQueue)
    adapter.enqueue([ReadyTask(10**9, "default", 0, timezone.now())])

    claim_nothing_for(adapter, 0.5)
    assert adapter._receive("default", 10, 0.0) == []


@brokers_only
def test_broker_redelivers_a_message_its_consumer_never_settled(
    make_adapter: MakeAdapter,
) -> None:
    dead, alive = make_adapter(), make_adapter()
    assert isinstance(dead, BrokerQueue)
    assert isinstance(alive, BrokerQueue)
    wid = durable.start(wf.OneStep, {})
    task_id = Task.objects.get(execution__workflow_id=wid).id
    received = claim_receive(dead)
    assert [d.task_id for d in received] == [task_id]
    close_without_settling(dead)

    again = claim_receive(alive, timeout=15)

    assert [d.task_id for d in again] == [task_id]


@brokers_only
def test_reconciler_publishes_what_the_broker_lost(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    assert isinstance(adapter, BrokerQueue)
    wid = durable.start(wf.OneStep, {})
    lose_messages(adapter)
    claim_nothing_for(adapter, 0.3)

    republished = Reconciler(adapter, ["default"]).run()

    assert republished == 1
    assert [c.workflow_id for c in claim_within(adapter)] == [wid]
    assert Reconciler(adapter, ["default"]).run() == 0  # claimed: nothing left to publish


def claim_receive(adapter: BrokerQueue, timeout: float = 10) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = adapter._receive("default", 1, 0.2)
        if found:
            return found
    return []


def close_without_settling(adapter: BrokerQueue) -> None:
    """What a killed consumer leaves behind: received, unsettled messages."""
    adapter._held.clear()
    adapter._buffer.clear()
    adapter.close()
