"""Concurrency keys in one process: who holds a slot, who waits, who is admitted next."""

from __future__ import annotations

import pytest

import durable
from durable.models import FlowSlot, Task, TaskStatus, WorkflowExecution
from durable.testing import run_until_idle
from tests.flowcontrol import workflows as wf
from tests.integration.support import row_counts, run_next

pytestmark = pytest.mark.django_db


def task_statuses(wid: str) -> list[str]:
    return list(Task.objects.filter(execution__workflow_id=wid).values_list("status", flat=True))


def test_starts_over_the_limit_wait_with_held_tasks_while_other_keys_run() -> None:
    first = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 1})
    second = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 2})
    other = durable.start(wf.OnePerCustomer, {"customer": "globex", "n": 3})

    assert task_statuses(first) == [TaskStatus.READY]
    assert task_statuses(second) == [TaskStatus.HELD]
    assert task_statuses(other) == [TaskStatus.READY]
    assert durable.get_execution(second).status == "pending"


def test_a_finishing_execution_admits_the_oldest_waiting_one_of_its_key() -> None:
    first = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 1})
    second = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 2})
    third = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 3})

    run_next()  # first.begin
    assert task_statuses(second) == [TaskStatus.HELD]
    run_next()  # first.end: first completes and hands its slot on
    assert durable.get_execution(first).status == "completed"
    assert task_statuses(second) == [TaskStatus.READY]
    assert task_statuses(third) == [TaskStatus.HELD]

    run_until_idle()
    results = [durable.get_execution(w).result for w in (first, second, third)]
    assert results == ["1", "2", "3"]
    assert not FlowSlot.objects.exists()


def test_callable_keys_and_limits_above_one() -> None:
    ids = [durable.start(wf.TwoPerRegion, {"region": r}) for r in ("EU", "eu", "Eu", "us")]

    assert [task_statuses(w) for w in ids] == [
        [TaskStatus.READY],
        [TaskStatus.READY],
        [TaskStatus.HELD],
        [TaskStatus.READY],
    ]
    run_until_idle()
    assert set(WorkflowExecution.objects.values_list("status", flat=True)) == {"completed"}


def test_a_waiting_execution_keeps_its_slot_until_it_finishes() -> None:
    asking = durable.start(wf.ApprovalPerCustomer, {"customer": "acme"})
    queued = durable.start(wf.ApprovalPerCustomer, {"customer": "acme"})
    run_until_idle()
    assert durable.get_execution(asking).status == "waiting"
    assert task_statuses(queued) == [TaskStatus.HELD]

    durable.send_event(asking, "approved", {"by": "ann"})
    run_until_idle()

    assert durable.get_execution(asking).status == "completed"
    assert durable.get_execution(queued).status == "waiting"


def test_cancelling_a_running_execution_admits_the_next_one() -> None:
    running = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 1})
    waiting = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 2})

    durable.cancel(running)

    assert task_statuses(waiting) == [TaskStatus.READY]


def test_cancelling_a_waiting_execution_takes_it_out_of_line() -> None:
    running = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 1})
    cancelled = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 2})
    last = durable.start(wf.OnePerCustomer, {"customer": "acme", "n": 3})

    durable.cancel(cancelled)
    assert task_statuses(last) == [TaskStatus.HELD]
    run_next()
    run_next()

    assert durable.get_execution(running).status == "completed"
    assert task_statuses(last) == [TaskStatus.READY]
    assert FlowSlot.objects.get().execution.workflow_id == last


def test_a_start_without_the_key_is_refused_and_writes_nothing() -> None:
    before = row_counts()
    with pytest.raises(ValueError, match="concurrency_key 'customer' is not in the input"):
        durable.start(wf.OnePerCustomer, {"n": 1})
    assert row_counts() == before
    assert not FlowSlot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_of_one_key_admit_exactly_the_limit() -> None:
    from tests.integration.test_concurrency import in_threads

    in_threads(8, lambda i: durable.start(wf.TwoPerRegion, {"region": "eu", "n": i}))

    assert FlowSlot.objects.filter(admitted=True).count() == 2
    assert FlowSlot.objects.filter(admitted=False).count() == 6
    assert Task.objects.filter(status=TaskStatus.READY).count() == 2
    run_until_idle()
    assert set(WorkflowExecution.objects.values_list("status", flat=True)) == {"completed"}
    assert not FlowSlot.objects.exists()


def test_a_retried_execution_waits_for_a_slot_like_a_new_start() -> None:
    done = durable.start(wf.ApprovalPerCustomer, {"customer": "acme"})
    run_until_idle()
    durable.cancel(done)  # its slot goes to nobody: no one is waiting
    holder = durable.start(wf.ApprovalPerCustomer, {"customer": "acme"})
    run_until_idle()
    assert durable.get_execution(holder).status == "waiting"

    durable.retry(done)

    assert task_statuses(done) == [TaskStatus.HELD]
    durable.send_event(holder, "approved", True)
    run_until_idle()
    assert durable.get_execution(holder).status == "completed"
    assert task_statuses(done) != [TaskStatus.HELD]  # admitted by the holder's finish
    assert durable.get_execution(done).status == "waiting"
