"""Batch checkpoints (durable.store.checkpoint.apply) and the committer that forms them
(durable.engine.committer): many steps' checkpoints in one transaction, with the same
outcome as each in its own, and every outcome the batch cannot take recorded alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable
from durable import queues
from durable.dsl import registry
from durable.engine.adapters import queue_adapter
from durable.engine.committer import Committer
from durable.engine.executor import execute
from durable.exceptions import LeaseLost
from durable.models import StepExecution, StepStatus, Task, TaskStatus, WorkflowExecution
from durable.store import checkpoint
from durable.store.claims import Chain
from durable.store.outcomes import Result, Settled, Succeeded
from durable.store.records import ClaimedTask, WaitEffects
from tests.integration import workflows as wf
from tests.integration.support import WORKER, claim_one, expire_lease, tasks_of

pytestmark = pytest.mark.django_db

CHAIN = Chain(WORKER, lease_seconds=30)


def claim_all(n: int, queue: str = "default") -> list[ClaimedTask]:
    from durable.store import claims

    found = claims.claim_tasks(queue, n, worker_id=WORKER, lease_seconds=30, using="default")
    assert len(found) == n, found
    return found


def completion(claim: ClaimedTask, output: Any = None, chain: Chain | None = CHAIN) -> Succeeded:
    definition = registry.get(claim.workflow_name)
    return Succeeded(claim, definition, duration_ms=1, logs=[], output=output, chain=chain)


def complete_steps(items: list[Succeeded], *, using: str) -> list[ClaimedTask | Result | None]:
    """checkpoint.apply, with each Settled result as the claim it chained."""
    return [
        r.chained if isinstance(r, Settled) else r for r in checkpoint.apply(items, using=using)
    ]


def run_step(claim: ClaimedTask, chain: Chain | None = CHAIN) -> Succeeded:
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
    return Succeeded(
        claim, definition, duration_ms=1, logs=[], ops=ctx.ops, output=output, chain=chain
    )


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
    if connection.vendor == "postgresql":
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


def test_two_branches_of_one_execution_and_a_restructured_execution_in_one_call() -> None:
    wid = durable.start(wf.Fanned, {})
    (prepare,) = claim_all(1)
    assert execute(prepare, queue_adapter()) is None
    branch_a, branch_b, branch_c = claim_all(3)
    other = durable.start(wf.Linear, {"seed": 1})
    (moved,) = claim_all(1)
    WorkflowExecution.objects.filter(workflow_id=other).update(definition_fingerprint="old")

    results = complete_steps(
        [run_step(branch_a), run_step(branch_b), run_step(moved)], using="default"
    )

    # Both branches are recorded in the batch, one after the other on their execution; the
    # restructured execution's step went through its deploy check in a transaction alone.
    assert results[:2] == [None, None]
    assert not Task.objects.filter(id__in=[branch_a.task_id, branch_b.task_id]).exists()
    assert [t.step for t in tasks_of(wid)] == [branch_c.step]
    assert durable.get_execution(wid).status == "running"
    assert isinstance(results[2], ClaimedTask | type(None))
    assert StepExecution.objects.get(execution__workflow_id=other, step="first").status == (
        StepStatus.COMPLETED
    )


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

    def joins(claim: ClaimedTask, waits: WaitEffects) -> bool:
        return checkpoint._batchable(Succeeded(claim, definition, waits=waits))

    assert joins(claim, WaitEffects())
    assert not joins(claim, WaitEffects(consumed_events=[1]))
    assert not joins(claim, WaitEffects(timed_out_inputs=[("x", 0)]))
    assert not joins(ClaimedTask(**{**claim.__dict__, "recorded_waits": [1]}), WaitEffects())
    assert not joins(ClaimedTask(**{**claim.__dict__, "kind": "compensate"}), WaitEffects())


@pytest.mark.django_db(transaction=True)
def test_a_step_the_database_refuses_fails_alone_and_the_rest_of_its_batch_commits() -> None:
    bad = durable.start(wf.Unstorable, {"where": "step"})
    good = durable.start(wf.Linear, {"seed": 1})
    bad_claim, good_claim = sorted(claim_all(2), key=lambda c: c.workflow_id != bad)

    results = dict(
        zip(
            (bad, good),
            checkpoint.apply([run_step(bad_claim), run_step(good_claim)], using="default"),
            strict=True,
        )
    )

    assert isinstance(results[bad], Exception)  # the engine records it as failed instead
    assert Task.objects.filter(id=bad_claim.task_id, lease_token=bad_claim.lease_token).exists()
    good_result = results[good]
    assert isinstance(good_result, Settled)
    assert good_result.chained is not None
    assert good_result.chained.step == "second"
    assert StepExecution.objects.get(execution__workflow_id=good, step="first").status == (
        StepStatus.COMPLETED
    )

    # The worker path: the executor's normalize refuses the output before storage would,
    # and records it as the step's failure.
    assert execute(bad_claim, queue_adapter()) is None
    bad_row = StepExecution.objects.get(execution__workflow_id=bad, step="record")
    assert bad_row.status == StepStatus.FAILED
    assert "integers may have at most 4300 digits" in bad_row.error["message"]


class _Recorder:
    """checkpoint.apply for the Committer's own tests: records the batches it is given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[Any]] = []
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def __call__(self, items: list[Any], *, using: str) -> list[Any]:
        with self.lock:
            self.batches.append(list(items))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return [Settled() for _ in items]


class _Outcome:
    """Just enough of an Outcome for the committer and the adapter it tells."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.claim = ClaimedTask(**{**_CLAIM, "task_id": n})


_CLAIM: dict[str, Any] = {
    "task_id": 0,
    "lease_token": None,
    "execution_pk": 0,
    "workflow_id": "w",
    "workflow_name": "w",
    "kind": "step",
    "step": "s",
    "token": None,
    "attempt": 1,
    "queue": "default",
    "input": {},
    "context": {},
    "deadline_at": None,
    "claimed_at": None,
}


def test_the_committer_gives_every_outcome_its_own_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder(delay=0.005)
    monkeypatch.setattr("durable.engine.committer.checkpoint.apply", recorder)
    committer = Committer(queue_adapter(), max_batch=4)
    results: dict[int, Any] = {}

    def run(n: int) -> None:
        for round_ in range(5):
            key = n * 100 + round_
            results[key] = committer.submit(_Outcome(key)).result(30)  # type: ignore[arg-type]

    steps = [threading.Thread(target=run, args=(n,)) for n in range(12)]
    for thread in steps:
        thread.start()
    for thread in steps:
        thread.join(30)

    assert len(results) == 60
    assert all(isinstance(r, Settled) for r in results.values())
    assert sorted(o.n for b in recorder.batches for o in b) == sorted(results)
    assert max(len(b) for b in recorder.batches) <= 4
    assert max(len(b) for b in recorder.batches) > 1  # outcomes did share commits
    assert recorder.most_running == 1
    committer.close(timeout=5)
    assert committer.backlog == 0


def test_the_committer_tries_again_when_the_connection_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import OperationalError

    calls: list[int] = []

    def flaky(items: list[Any], *, using: str) -> list[Any]:
        calls.append(len(items))
        if len(calls) < 3:
            return [OperationalError("connection refused")] * len(items)
        return [Settled() for _ in items]

    monkeypatch.setattr("durable.engine.committer.checkpoint.apply", flaky)
    committer = Committer(queue_adapter())

    assert isinstance(committer.submit(_Outcome(1)).result(30), Settled)  # type: ignore[arg-type]
    assert calls == [1, 1, 1]
    committer.close(timeout=5)


def test_an_error_of_the_outcome_itself_is_its_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def refusing(items: list[Any], *, using: str) -> list[Any]:
        return [ValueError("a value the database refused") for _ in items]

    monkeypatch.setattr("durable.engine.committer.checkpoint.apply", refusing)
    committer = Committer(queue_adapter())

    assert isinstance(committer.submit(_Outcome(1)).result(30), ValueError)  # type: ignore[arg-type]
    committer.close(timeout=5)


@pytest.mark.django_db(transaction=True)
def test_a_claim_marks_its_execution_running_unless_another_transaction_holds_the_row() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("rows held by another transaction: PostgreSQL's SKIP LOCKED")
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
