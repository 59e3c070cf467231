"""A worker that dies mid-step: its lease expires, the attempt re-runs with the same number,
and whatever the dead worker tries to commit afterwards is rejected."""

from __future__ import annotations

import pytest

import durable
from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.exceptions import LeaseLost
from durable.models import StepExecution, TaskStatus, WorkflowExecution
from durable.store import checkpoint, claims
from durable.store.outcomes import Failed, Succeeded
from durable.store.records import error_record
from durable.testing import run_until_idle
from tests.integration import workflows as wf
from tests.integration.support import (
    attempts,
    claim_one,
    expire_lease,
    ready_task,
    run_next,
    snapshot,
    tasks_of,
)

pytestmark = pytest.mark.django_db


def crash_after_one_failure() -> tuple[str, object]:
    """Run attempt 1 (it fails), then claim attempt 2 on a worker that dies holding it."""
    wid = durable.start(wf.Recovering, {})
    run_next()  # attempt 1 fails and is saved
    task = ready_task(wid)
    assert task.attempt == 2
    dead = claim_one(worker_id="doomed-worker")
    assert dead is not None
    assert dead.attempt == 2
    assert tasks_of(wid)[0].status == TaskStatus.CLAIMED
    expire_lease(dead)
    return wid, dead


def test_an_expired_lease_is_reaped_and_the_attempt_number_survives() -> None:
    wid, _ = crash_after_one_failure()

    assert claims.reap_expired_leases(using="default") == 1
    task = ready_task(wid)
    assert task.attempt == 2
    assert task.lease_token is None
    assert task.claims == 2  # attempt 1 and the dead claim of attempt 2

    retaken = claim_one(worker_id="rescuer")
    assert retaken is not None
    saved_failures = StepExecution.objects.filter(
        execution__workflow_id=wid, step="work", status="failed"
    ).count()
    assert retaken.attempt == saved_failures + 1 == 2
    execute(retaken, queue_adapter())

    rows = attempts(wid, "work")
    assert [(r.attempt, r.status, r.worker_id) for r in rows] == [
        (1, "failed", "it-worker"),
        (2, "completed", "rescuer"),
    ]
    run_until_idle()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.context["ran_on_attempt"] == 2
    assert execution.context["after"] is True


def test_a_lease_not_yet_expired_is_not_reaped() -> None:
    wid = durable.start(wf.Recovering, {})
    held = claim_one(worker_id="alive")
    assert held is not None

    assert claims.reap_expired_leases(using="default") == 0
    assert tasks_of(wid)[0].lease_token == held.lease_token
    assert claim_one(worker_id="thief") is None


def test_a_stale_checkpoint_after_the_reap_is_rejected_without_writing() -> None:
    wid, dead = crash_after_one_failure()
    claims.reap_expired_leases(using="default")
    before = snapshot(wid)

    definition = wf.Recovering.definition()
    results = checkpoint.apply(
        [
            Succeeded(dead, definition, duration_ms=1, ops=[["put", "ghost", True]], output=99),
            Failed(dead, definition, duration_ms=1, error=error_record(RuntimeError("ghost"))),
        ],
        using="default",
    )
    assert [type(result) for result in results] == [LeaseLost, LeaseLost]
    assert snapshot(wid) == before


def test_a_stale_checkpoint_after_another_worker_retook_the_task_is_rejected() -> None:
    wid, dead = crash_after_one_failure()
    claims.reap_expired_leases(using="default")
    retaken = claim_one(worker_id="rescuer")
    assert retaken is not None
    before = snapshot(wid)

    # The dead worker wakes up and finishes its step after all: its outcome is discarded.
    execute(dead, queue_adapter())
    assert not claims.release(dead, using="default")
    assert not claims.heartbeat([dead], lease_seconds=30, using="default")
    assert snapshot(wid) == before

    # The rescuer's lease is untouched and its checkpoint lands.
    execute(retaken, queue_adapter())
    rows = attempts(wid, "work")
    assert [(r.attempt, r.status, r.worker_id) for r in rows] == [
        (1, "failed", "it-worker"),
        (2, "completed", "rescuer"),
    ]
    assert "ghost" not in WorkflowExecution.objects.get(workflow_id=wid).context


def test_a_released_claim_runs_again_without_counting_an_attempt() -> None:
    wid = durable.start(wf.Recovering, {})
    claim = claim_one()
    assert claim is not None
    assert claims.release(claim, using="default")

    task = ready_task(wid)
    assert task.attempt == 1
    again = claim_one()
    assert again is not None
    assert again.attempt == 1
    assert again.lease_token != claim.lease_token


def test_heartbeat_keeps_a_lease_from_being_reaped() -> None:
    wid = durable.start(wf.Recovering, {})
    claim = claim_one()
    assert claim is not None
    expire_lease(claim)

    assert claims.heartbeat([claim], lease_seconds=30, using="default") == 1
    assert claims.reap_expired_leases(using="default") == 0
    execute(claim, queue_adapter())
    assert attempts(wid, "work")[0].status == "failed"


def test_the_reaper_remembers_who_held_an_expired_lease() -> None:
    wid = durable.start(wf.OneStep, {})
    held = claim_one(worker_id="late-worker")
    assert held is not None
    expire_lease(held)

    assert claims.reap_expired_leases(using="default") == 1

    (task,) = tasks_of(wid)
    assert (task.expiries, task.lost_by) == (1, ["late-worker"])
    retaken = claim_one(worker_id="next")
    assert retaken is not None
    assert (retaken.expiries, retaken.lost_by) == (1, ["late-worker"])


def test_leases_that_lapsed_while_their_worker_lived_on_do_not_fail_the_step(settings) -> None:
    from durable.models import Task
    from durable.store import workers

    settings.DURABLE = {**settings.DURABLE, "MAX_LEASE_EXPIRIES": 2}
    workers.register("alive:1:a", {"default": 8}, using="default")
    workers.register("stopped:2:b", {"default": 8}, using="default")
    workers.stopped("stopped:2:b", using="default")
    busy = durable.start(wf.OneStep, {"echo": "busy"})
    killed = durable.start(wf.OneStep, {"echo": "killed"})
    # Three lapses of a worker still alive, one of a stopped one: one death in all.
    Task.objects.filter(execution__workflow_id=busy).update(
        expiries=4, lost_by=["alive:1:a", "alive:1:a", "stopped:2:b", "alive:1:a"]
    )
    # A stopped worker and one never heard of: two deaths, the limit.
    Task.objects.filter(execution__workflow_id=killed).update(
        expiries=2, lost_by=["stopped:2:b", "unknown:3:c"]
    )

    run_until_idle()

    assert durable.get_execution(busy).status == "completed"
    failed = durable.get_execution(killed)
    assert failed.status == "failed"
    assert failed.error["type"] == "durable.exceptions.WorkerLost"
    assert "was gone 2 times" in failed.error["message"]


def test_a_holder_silent_for_more_than_a_lease_is_waited_for_not_run_again(settings) -> None:
    """Its process may have died (a poison pill would kill this worker too) or it may be
    cut off from the database for a while: the task waits until two leases of silence tell
    which, then fails if it was the last death allowed."""
    from datetime import timedelta

    from django.utils import timezone

    from durable.models import Task, WorkerState
    from durable.store import workers

    settings.DURABLE = {**settings.DURABLE, "MAX_LEASE_EXPIRIES": 2, "LEASE_SECONDS": 30}
    workers.register("quiet:1:a", {"default": 8}, using="default")
    # Last seen 40 s ago: more than a lease (30 s), less than two.
    WorkerState.objects.filter(worker_id="quiet:1:a").update(
        seen_at=timezone.now() - timedelta(seconds=40)
    )
    wid = durable.start(wf.OneStep, {"echo": "x"})
    Task.objects.filter(execution__workflow_id=wid).update(
        expiries=2, lost_by=["unknown:2:b", "quiet:1:a"]
    )

    run_until_idle(skip_delays=False)

    (task,) = tasks_of(wid)
    assert task.status == TaskStatus.READY
    assert (task.expiries, task.lost_by) == (2, ["unknown:2:b", "quiet:1:a"])
    # Due when the holder has been silent for two leases: 20 s from now.
    remaining = (task.run_at - timezone.now()).total_seconds()
    assert 15 < remaining <= 20
    assert [a.status for a in attempts(wid, "only")] in ([], ["pending"])
    assert durable.get_execution(wid).status == "running"

    # Two leases of silence later, the holder is known gone: the second death.
    WorkerState.objects.filter(worker_id="quiet:1:a").update(
        seen_at=timezone.now() - timedelta(seconds=61)
    )
    Task.objects.filter(id=task.id).update(run_at=timezone.now())
    run_until_idle(skip_delays=False)

    failed = durable.get_execution(wid)
    assert failed.status == "failed"
    assert "was gone 2 times" in failed.error["message"]


def test_a_holder_heard_from_within_the_wait_lives_on_and_the_step_runs(settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from durable.models import Task, WorkerState
    from durable.store import workers

    settings.DURABLE = {**settings.DURABLE, "MAX_LEASE_EXPIRIES": 2, "LEASE_SECONDS": 30}
    workers.register("cut-off:1:a", {"default": 8}, using="default")
    WorkerState.objects.filter(worker_id="cut-off:1:a").update(
        seen_at=timezone.now() - timedelta(seconds=40)
    )
    wid = durable.start(wf.OneStep, {"echo": "x"})
    Task.objects.filter(execution__workflow_id=wid).update(
        expiries=2, lost_by=["unknown:2:b", "cut-off:1:a"]
    )
    run_until_idle(skip_delays=False)
    assert durable.get_execution(wid).status == "running"

    # Back in touch with the database before two leases passed: it was alive all along.
    workers.seen("cut-off:1:a", using="default")
    Task.objects.filter(execution__workflow_id=wid).update(run_at=timezone.now())
    run_until_idle()

    assert durable.get_execution(wid).status == "completed"
