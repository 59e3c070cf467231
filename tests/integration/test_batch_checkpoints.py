"""Batch checkpoints (durable.store.batch) and the group commit that forms them
(durable.engine.groupcommit): many steps' checkpoints in one transaction, with the same
outcome as each in its own, and every step the batch cannot take left to go alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from durable.engine.groupcommit import GroupCommit

import durable
from durable import queues
from durable.dsl import registry
from durable.engine.adapters import queue_adapter
from durable.engine.executor import execute
from durable.exceptions import LeaseLost
from durable.models import StepExecution, StepStatus, Task, TaskStatus, WorkflowExecution
from durable.store import batch
from durable.store.batch import ALONE, Completion, complete_steps
from durable.store.claims import Chain
from durable.store.records import ClaimedTask, WaitEffects
from tests.integration import workflows as wf
from tests.integration.support import WORKER, claim_one, expire_lease, tasks_of

pytestmark = pytest.mark.django_db

CHAIN = Chain(WORKER, lease_seconds=30)


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("batch checkpoints are PostgreSQL's: runs in the PostgreSQL run only")


def claim_all(n: int, queue: str = "default") -> list[ClaimedTask]:
    from durable.store import claims

    found = claims.claim_tasks(queue, n, worker_id=WORKER, lease_seconds=30, using="default")
    assert len(found) == n, found
    return found


def completion(claim: ClaimedTask, output: Any = None, chain: Chain | None = CHAIN) -> Completion:
    definition = registry.get(claim.workflow_name)
    return Completion(claim, definition, [], output, 1, [], chain)


def run_step(claim: ClaimedTask, chain: Chain | None = CHAIN) -> Completion:
    """Run the claim's step method (as the executor would) and return its completion."""
    from durable.flow.context import Context

    definition = registry.get(claim.workflow_name)
    step = definition.step(claim.step)
    ctx = Context(
        claim.context,
        input=claim.input,
        workflow_id=claim.workflow_id,
        current_step=step.name,
        attempt=claim.attempt,
    )
    output = getattr(definition.workflow_class(), step.method)(ctx)
    return Completion(claim, definition, ctx.ops, output, 1, [], chain)


def test_a_batch_moves_every_execution_on_as_lone_checkpoints_would() -> None:
    durable.start(wf.Linear, {"seed": 0})
    (alone,) = claim_all(1)
    with CaptureQueriesContext(connection) as one_step:
        complete_steps([run_step(alone)], using="default")
    ids = [durable.start(wf.Linear, {"seed": n}) for n in range(3)]
    claimed = claim_all(3)
    with CaptureQueriesContext(connection) as three_steps:
        results = complete_steps([run_step(c) for c in claimed], using="default")

    assert all(isinstance(r, ClaimedTask) and r.step == "second" for r in results)
    # One statement per kind of write, however many steps share the batch.
    assert len(three_steps.captured_queries) == len(one_step.captured_queries) <= 10, [
        q["sql"][:60] for q in three_steps.captured_queries
    ]
    for wid, chained in zip(ids, results, strict=True):
        assert isinstance(chained, ClaimedTask)
        assert chained.workflow_id == wid
        (task,) = tasks_of(wid)
        assert (task.status, task.lease_token) == (TaskStatus.CLAIMED, chained.lease_token)
        first = StepExecution.objects.get(execution__workflow_id=wid, step="first")
        assert (first.status, first.output) == (StepStatus.COMPLETED, "first done")
        second = StepExecution.objects.get(execution__workflow_id=wid, step="second")
        assert (second.status, second.worker_id) == (StepStatus.RUNNING, WORKER)
        execution = durable.get_execution(wid)
        assert execution.status == "running"
        assert execution.context["first"] == chained.context["first"]

    # Run the batch on to the end: results and final status as the lone path gives.
    second = complete_steps([run_step(c) for c in results], using="default")  # type: ignore[arg-type]
    third = complete_steps([run_step(c) for c in second], using="default")  # type: ignore[arg-type]
    assert third == [None, None, None]
    for n, wid in enumerate(ids):
        execution = durable.get_execution(wid)
        assert execution.status == "completed"
        assert execution.result == [n + 1, (n + 1) * 10]
        assert execution.completed_at is not None
        assert execution.duration_ms is not None
        assert tasks_of(wid) == []


def test_a_lost_lease_fails_only_its_own_step() -> None:
    ids = [durable.start(wf.Linear, {"seed": n}) for n in range(2)]
    lost, kept = claim_all(2)
    Task.objects.filter(id=lost.task_id).update(lease_token=None, status=TaskStatus.READY)

    results = complete_steps([run_step(lost), run_step(kept)], using="default")

    assert isinstance(results[0], LeaseLost)
    assert isinstance(results[1], ClaimedTask)
    assert (
        StepExecution.objects.get(execution__workflow_id=ids[0], step="first").status
        == StepStatus.RUNNING
    )  # untouched: its new owner records it
    assert [t.step for t in tasks_of(ids[0])] == ["first"]


def test_a_second_step_of_one_execution_and_a_restructured_execution_go_alone() -> None:
    wid = durable.start(wf.Fanned, {})
    (prepare,) = claim_all(1)
    assert execute(prepare, queue_adapter()) is None
    branch_a, branch_b, _ = claim_all(3)
    other = durable.start(wf.Linear, {"seed": 1})
    (moved,) = claim_all(1)
    WorkflowExecution.objects.filter(workflow_id=other).update(definition_fingerprint="old")

    results = complete_steps(
        [run_step(branch_a), run_step(branch_b), run_step(moved)], using="default"
    )

    assert results[0] is None  # joined later; nothing to chain
    assert results[1] is ALONE
    assert results[2] is ALONE
    # What went alone was not touched: its task is still ours, its attempt still running.
    assert Task.objects.filter(id=branch_b.task_id, lease_token=branch_b.lease_token).exists()
    assert Task.objects.filter(id=moved.task_id, lease_token=moved.lease_token).exists()
    assert durable.get_execution(wid).status == "running"


def test_a_thread_whose_chain_ends_gets_the_next_due_task_of_its_queue() -> None:
    first = durable.start(wf.OneStep, {"echo": 1})
    (claim,) = claim_all(1)
    low = durable.start(wf.OneStep, {"echo": "low"})
    high = durable.start(wf.OneStep, {"echo": "high"}, priority=5)

    (refilled,) = complete_steps([completion(claim, output=1)], using="default")

    assert durable.get_execution(first).status == "completed"
    assert isinstance(refilled, ClaimedTask)
    assert refilled.workflow_id == high  # by priority, as any claim
    assert durable.get_execution(high).status == "running"
    row = StepExecution.objects.get(execution__workflow_id=high)
    assert (row.status, row.worker_id) == (StepStatus.RUNNING, WORKER)
    (low_task,) = tasks_of(low)
    assert low_task.status == TaskStatus.READY


def test_no_refill_without_a_chain_or_from_a_paused_queue() -> None:
    durable.start(wf.OneStep, {"echo": 1})
    durable.start(wf.OneStep, {"echo": 2})
    first, second = claim_all(2)
    durable.start(wf.OneStep, {"echo": 3})

    assert complete_steps([completion(first, chain=None)], using="default") == [None]
    queues.pause("default")
    assert complete_steps([completion(second)], using="default") == [None]
    assert Task.objects.filter(status=TaskStatus.READY).count() == 1


def test_what_may_join_a_batch() -> None:
    durable.start(wf.Linear, {"seed": 1})
    (claim,) = claim_all(1)
    definition = registry.get(claim.workflow_name)

    assert batch.eligible(claim, definition, WaitEffects(), "default")
    assert not batch.eligible(claim, definition, WaitEffects(consumed_events=[1]), "default")
    assert not batch.eligible(
        claim, definition, WaitEffects(timed_out_inputs=[("x", 0)]), "default"
    )
    resumed = ClaimedTask(**{**claim.__dict__, "recorded_waits": [1]})
    assert not batch.eligible(resumed, definition, WaitEffects(), "default")
    compensation = ClaimedTask(**{**claim.__dict__, "kind": "compensate"})
    assert not batch.eligible(compensation, definition, WaitEffects(), "default")


@pytest.mark.django_db(transaction=True)
def test_a_step_the_database_refuses_fails_alone_and_the_rest_of_its_batch_commits() -> None:
    bad = durable.start(wf.Unstorable, {"where": "step"})
    good = durable.start(wf.Linear, {"seed": 1})
    bad_claim, good_claim = sorted(claim_all(2), key=lambda c: c.workflow_id != bad)
    committer = GroupCommit("default", max_batch=8)
    results: dict[str, ClaimedTask | None] = {}
    barrier = threading.Barrier(2)

    def run(claim: ClaimedTask) -> None:
        barrier.wait()
        try:
            results[claim.workflow_id] = execute(
                claim, queue_adapter(), chain=CHAIN, committer=committer
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in (bad_claim, good_claim)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    committer.close()

    assert results[bad] is None
    bad_row = StepExecution.objects.get(execution__workflow_id=bad, step="record")
    assert bad_row.status == StepStatus.FAILED
    assert "could not be stored" in bad_row.error["message"]
    chained = results[good]
    assert chained is not None
    assert chained.step == "second"
    assert StepExecution.objects.get(execution__workflow_id=good, step="first").status == (
        StepStatus.COMPLETED
    )


class _Recorder:
    """complete_steps for GroupCommit's own tests: records the batches it is given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def __call__(self, items: list[Any], *, using: str) -> list[Any]:
        with self.lock:
            self.batches.append([item for item in items])
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return [f"result {item}" for item in items]


@pytest.mark.parametrize("threads", [1, 2])
def test_group_commit_gives_every_thread_its_own_result(
    monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    recorder = _Recorder(delay=0.005)
    monkeypatch.setattr("durable.engine.groupcommit.complete_steps", recorder)
    committer = GroupCommit("default", max_batch=4, threads=threads)
    results: dict[int, Any] = {}

    def run(n: int) -> None:
        for round_ in range(5):
            results[n * 100 + round_] = committer.complete(n * 100 + round_)  # type: ignore[arg-type]

    steps = [threading.Thread(target=run, args=(n,)) for n in range(12)]
    for thread in steps:
        thread.start()
    for thread in steps:
        thread.join(30)

    assert results == {key: f"result {key}" for key in results}
    assert len(results) == 60
    assert sorted(i for b in recorder.batches for i in b) == sorted(results)
    assert max(len(b) for b in recorder.batches) <= 4
    assert max(len(b) for b in recorder.batches) > 1  # steps did share commits
    assert recorder.most_running <= threads
    committer.close(timeout=5)
    assert committer._queue == []
    assert not any(thread.is_alive() for thread in committer._threads)


def test_a_failing_batch_hands_every_step_back_to_go_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(items: list[Any], *, using: str) -> list[Any]:
        raise RuntimeError("connection lost")

    monkeypatch.setattr("durable.engine.groupcommit.complete_steps", broken)
    committer = GroupCommit("default")

    assert committer.complete(object()) is ALONE  # type: ignore[arg-type]
    committer.close(timeout=5)
    # Once closed, steps are checkpointed alone.
    assert committer.complete(object()) is ALONE  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_a_claim_marks_its_execution_running_unless_another_transaction_holds_the_row() -> None:
    held = durable.start(wf.OneStep, {"echo": 1})
    # Another transaction holds the execution row as a cancel or a checkpoint does: the
    # claim does not wait for it.
    import psycopg

    from tests.support.workers import test_database_url

    with psycopg.connect(test_database_url()) as other:
        other.execute(
            "SELECT id FROM durable_workflowexecution WHERE workflow_id = %s FOR NO KEY UPDATE",
            [held],
        )
        started = time.monotonic()
        (claim,) = claim_all(1)
        assert time.monotonic() - started < 5
    assert durable.get_execution(held).status == "pending"
    # Its checkpoint settles it, with the claim's time as its start.
    assert execute(claim, queue_adapter()) is None
    execution = WorkflowExecution.objects.get(workflow_id=held)
    assert execution.status == "completed"
    assert execution.started_at == claim.claimed_at


def test_an_expired_batch_claim_is_retaken_like_any_other() -> None:
    wid = durable.start(wf.Linear, {"seed": 1})
    (first,) = claim_all(1)
    (second,) = complete_steps([run_step(first)], using="default")
    assert isinstance(second, ClaimedTask)
    expire_lease(second)
    from durable.store import claims

    assert claims.reap_expired_leases(using="default") == 1
    retaken = claim_one()
    assert retaken is not None
    assert retaken.step == "second"
    assert isinstance(complete_steps([run_step(second)], using="default")[0], LeaseLost)
    assert durable.get_execution(wid).status == "running"
