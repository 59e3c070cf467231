"""Chaining: a checkpoint claims the step it queues next for the same worker, in its own
transaction, when the worker asks for it and the next step's queue allows it."""

from __future__ import annotations

import pytest

import durable
from durable import queues
from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.models import StepExecution, StepStatus, TaskStatus
from durable.store import claims
from durable.store.claims import Chain
from tests.integration import workflows as wf
from tests.integration.support import WORKER, claim_one, expire_lease, tasks_of

pytestmark = pytest.mark.django_db

CHAIN = Chain(WORKER, lease_seconds=30)


def test_a_chained_step_is_claimed_by_the_checkpoint_and_runs_next() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None

    second = execute(first, queue_adapter(), chain=CHAIN)

    assert second is not None
    assert second.step == "second"
    assert second.context["first"] == 2  # the view includes what the step just wrote
    (task,) = tasks_of(wid)
    assert (task.status, task.leased_by, task.lease_token) == (
        TaskStatus.CLAIMED,
        WORKER,
        second.lease_token,
    )
    row = StepExecution.objects.get(execution__workflow_id=wid, step="second")
    assert (row.status, row.worker_id, row.attempt) == (StepStatus.RUNNING, WORKER, 1)
    assert claim_one() is None  # nobody else can take it

    third = execute(second, queue_adapter(), chain=CHAIN)
    assert third is not None
    assert third.step == "third"
    assert execute(third, queue_adapter(), chain=CHAIN) is None  # the end: nothing to chain
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert execution.result == [2, 20]


def test_without_a_chain_the_next_step_is_left_ready_for_any_worker() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None

    assert execute(first, queue_adapter()) is None

    assert [t.status for t in tasks_of(wid)] == [TaskStatus.READY]


def test_a_step_on_another_queue_is_not_chained() -> None:
    wid = durable.start(wf.QueueHopping, {})
    first = claim_one("default")
    assert first is not None

    assert execute(first, queue_adapter(), chain=CHAIN) is None

    assert [(t.step, t.status) for t in tasks_of(wid)] == [("on_payments", TaskStatus.READY)]


def test_a_paused_queue_is_not_chained() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None
    queues.pause("default")

    assert execute(first, queue_adapter(), chain=CHAIN) is None

    assert [(t.step, t.status) for t in tasks_of(wid)] == [("second", TaskStatus.READY)]
    queues.resume("default")


def test_a_chained_claim_whose_worker_died_is_retaken_and_rerun() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None
    second = execute(first, queue_adapter(), chain=CHAIN)
    assert second is not None

    expire_lease(second)  # the worker died before running it
    assert claims.reap_expired_leases(using="default") == 1
    retaken = claim_one()
    assert retaken is not None
    assert retaken.step == "second"
    assert execute(second, queue_adapter()) is None  # the dead worker's outcome is refused
    assert execute(retaken, queue_adapter()) is None
    assert [t.step for t in tasks_of(wid)] == ["third"]


def test_higher_priority_work_due_on_the_queue_is_not_overtaken_by_a_chain() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None
    urgent = durable.start(wf.OneStep, {}, priority=5)

    # The chain ends: the caller is handed the queue's best due task instead (a refill).
    claimed = execute(first, queue_adapter(), chain=CHAIN)

    assert claimed is not None
    assert claimed.workflow_id == urgent
    assert [t.status for t in tasks_of(wid)] == [TaskStatus.READY]


def test_a_chain_the_worker_withdrew_by_the_checkpoint_is_not_taken() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    first = claim_one()
    assert first is not None
    stopping = Chain(WORKER, lease_seconds=30, allowed=lambda: False)

    assert execute(first, queue_adapter(), chain=stopping) is None

    assert [t.status for t in tasks_of(wid)] == [TaskStatus.READY]
