"""Runs claimed tasks (step attempts and compensations) and checkpoints their outcomes.

A run has three parts, the same for a worker and for an inline run:

- `prepare` turns a claim into a `Run`, or straight into an outcome when there is nothing
  to run (a workflow this worker cannot load, a lease lost too often, a passed deadline);
- `invoke` runs a sync step on the calling thread, `invoke_async` an async one on the
  calling event loop; both return the attempt's `Outcome`, whatever the step raised;
- the outcome goes to a checkpointer (`durable.engine.committer`), and `settle` handles its
  result: the claim to run next, if the checkpoint chained one.

`execute` is all of it on the calling thread, with the checkpoint made at once. None of
these raise for anything a step or its checkpoint does, but Ctrl-C (KeyboardInterrupt) on
the main thread, which stops an inline run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl import registry
from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition, StepNode
from durable.engine import livelogs
from durable.engine.async_runner import run_coroutine
from durable.engine.committer import TRANSIENT, Inline, tell_adapter
from durable.engine.connections import close_stale_connections
from durable.engine.lanes import DIRECT, Db
from durable.engine.logcapture import StepLog, capturing
from durable.engine.progress import ProgressReporter
from durable.engine.waits import StepWaits
from durable.exceptions import (
    LeaseLost,
    NonRetryable,
    StepTimeout,
    WaitConflict,
    WorkerLost,
    WorkflowNotFound,
    WorkflowTimeout,
)
from durable.flow.context import Context
from durable.flow.waits import Suspend
from durable.queue.base import QueueAdapter
from durable.serialization import NotJSONError, normalize
from durable.store import checkpoint, deploys, workers
from durable.store.claims import Chain
from durable.store.outcomes import (
    Compensated,
    Failed,
    Outcome,
    Parked,
    Result,
    Settled,
    Succeeded,
)
from durable.store.records import ClaimedTask, error_record

logger = logging.getLogger("durable.worker")


@dataclass
class Failure:
    """What an exception comes to before it is an outcome."""

    error: dict[str, Any]
    retryable: bool


@dataclass
class Run:
    """A claim ready to run: the method to call and what it is called with."""

    claim: ClaimedTask
    definition: Definition
    step: StepNode  # for a compensation: the compensation method as a step
    method: Callable[..., Any] | Failure  # Failure: the workflow class could not be made
    args: tuple[Any, ...]
    ctx: Context | None  # None for a compensation
    waits: StepWaits | None
    log: StepLog
    adapter: QueueAdapter
    chain: Chain | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def using(self) -> str:
        return self.adapter.using

    @property
    def is_async(self) -> bool:
        return self.step.is_async and not isinstance(self.method, Failed)

    def duration_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


def needs_database(claim: ClaimedTask) -> bool:
    """Whether `prepare` reads the database for `claim` (a worker then calls it on a lane
    of its own rather than on its event loop)."""
    try:
        definition = registry.get(claim.workflow_name)
    except WorkflowNotFound:
        return False
    return (
        claim.fingerprint != fingerprint(definition)
        or claim.expiries >= int(durable_settings.MAX_LEASE_EXPIRIES)
        or (claim.kind == "step" and StepWaits.needs_loading(claim))
    )


def prepare(
    claim: ClaimedTask,
    adapter: QueueAdapter,
    *,
    db: Db = DIRECT,
    chain: Chain | None = None,
) -> Run | Outcome | None:
    """What to do with `claim`: a Run; an Outcome to checkpoint without running anything;
    or None when a deploy moved the claim's position, or whether its last holders died is
    not known yet (it was handed back or parked, and the adapter told). `db` carries
    progress reports while the step runs."""
    using = adapter.using
    if _position_gone(claim, adapter):
        return None
    try:
        definition = registry.get(claim.workflow_name)
        step = definition.step(claim.step)
    except (WorkflowNotFound, KeyError, AssertionError) as exc:
        problem = NonRetryable(
            f"this worker cannot run {claim.kind} {claim.step!r} of "
            f"workflow {claim.workflow_name!r}: {exc}"
        )
        return _unrun(claim, None, error_record(problem, with_traceback=False))
    lost = _worker_lost(claim, using)
    if isinstance(lost, _Undecided):
        # Neither run it (a poison pill would kill this worker too) nor fail it (its last
        # holder may be alive): ask again once it is known.
        adapter.nack(claim, until=lost.until)
        return None
    if lost is not None:
        error = {**error_record(lost, with_traceback=False), "non_retryable": True}
        return _unrun(claim, definition, error)
    log = StepLog(int(durable_settings.STEP_LOG_MAX_BYTES))
    if claim.kind == "compensate":
        return _compensation(claim, definition, step, log, adapter)
    if claim.deadline_at is not None and timezone.now() >= claim.deadline_at:
        timeout = WorkflowTimeout(
            f"workflow {definition.name!r} passed its timeout of "
            f"{definition.timeout:g}s before step {step.name!r}"
        )
        return _unrun(claim, definition, error_record(timeout, with_traceback=False))
    waits = StepWaits(claim)
    if StepWaits.needs_loading(claim):
        waits.load(using)
    ctx = Context(
        claim.context,
        input=claim.input,
        workflow_id=claim.workflow_id,
        current_step=step.name,
        attempt=claim.attempt,
        waits=waits,
        progress_hook=ProgressReporter(
            claim.execution_pk, step.name, claim.token.scope_key(), claim.attempt, using, db
        ),
    )
    args: tuple[Any, ...] = (ctx, claim.token.item) if step.takes_item else (ctx,)
    method = _method(definition, step.method)
    return Run(claim, definition, step, method, args, ctx, waits, log, adapter, chain)


@dataclass(frozen=True)
class _Undecided:
    """The holders of the claim's lapsed leases may have died often enough to give up, but
    whether they did is only known at `until`."""

    until: datetime


def _worker_lost(claim: ClaimedTask, using: str) -> WorkerLost | _Undecided | None:
    """WorkerLost when the workers that held the claim's task died MAX_LEASE_EXPIRIES times
    running it (a step that kills its worker: out of memory, a crash in native code). Leases
    that lapsed while their worker lived on (busy, or cut off from the database) do not
    count: the step runs again."""
    limit = int(durable_settings.MAX_LEASE_EXPIRIES)
    if claim.expiries < limit:
        return None
    # Expiries recorded before their holders were remembered count as deaths.
    unknown = claim.expiries - len(claim.lost_by)
    verdict = workers.judge(
        claim.lost_by, lease_seconds=float(durable_settings.LEASE_SECONDS), using=using
    )
    deaths = unknown + sum(1 for holder in claim.lost_by if holder in verdict.gone)
    maybe = sum(1 for holder in claim.lost_by if holder in verdict.undecided)
    if deaths < limit <= deaths + maybe and verdict.decided_at is not None:
        return _Undecided(verdict.decided_at)
    if deaths < limit:
        logger.warning(
            "the lease of %s %r of %s lapsed %d times, %d of them while its worker lived on "
            "(busy, or cut off from the database); running it again",
            claim.kind,
            claim.step,
            claim.workflow_id,
            claim.expiries,
            claim.expiries - deaths,
        )
        return None
    return WorkerLost(
        f"the worker running {claim.kind} {claim.step!r} was gone {deaths} times before "
        f"finishing it (its process stopped: killed? out of memory?); giving up "
        f"(DURABLE['MAX_LEASE_EXPIRIES'] = {limit})"
    )


def _compensation(
    claim: ClaimedTask, definition: Definition, step: StepNode, log: StepLog, adapter: QueueAdapter
) -> Run:
    assert step.compensate is not None
    method = _method(definition, step.compensate)
    compensation = StepNode(name=step.compensate, method=step.compensate, timeout=step.timeout)
    args: tuple[Any, ...] = ()
    if not isinstance(method, Failure):
        ctx = Context(
            claim.context,
            input=claim.input,
            workflow_id=claim.workflow_id,
            current_step=step.compensate,
            attempt=claim.attempt,
        )
        takes_item = len(inspect.signature(method).parameters) >= 2
        args = (ctx, claim.token.item) if takes_item else (ctx,)
        compensation = StepNode(
            name=step.compensate,
            method=step.compensate,
            is_async=inspect.iscoroutinefunction(method),
            timeout=step.timeout,
        )
    return Run(claim, definition, compensation, method, args, None, None, log, adapter)


def _method(definition: Definition, name: str) -> Callable[..., Any] | Failure:
    """Method `name` of a fresh workflow instance. An `__init__` that raises fails the
    attempt like the step would; escaping as a checkpoint error, it would hand the claim
    back to run again forever (a release counts no attempt)."""
    try:
        return getattr(definition.workflow_class(), name)  # type: ignore[no-any-return]
    except Exception as exc:
        return Failure(error_record(exc), retryable=True)
    except BaseException as exc:
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)


def _unrun(claim: ClaimedTask, definition: Definition | None, error: dict[str, Any]) -> Outcome:
    """Fail an attempt without running it (nothing to retry, no traceback of ours). A
    compensation goes on to the next one; unloadable ones are ended by the checkpoint."""
    if claim.kind == "compensate" and definition is not None:
        return Compensated(claim, definition, error=error, retryable=False)
    return Failed(claim, definition, error=error, retryable=False)


def _position_gone(claim: ClaimedTask, adapter: QueueAdapter) -> bool:
    """True when a deploy removed or renamed the claim's position (durable.store.deploys):
    the execution was parked, or the claim goes back to run under its new name."""
    try:
        definition = registry.get(claim.workflow_name)
    except WorkflowNotFound:
        return False  # failed by the caller, as a workflow this worker cannot run
    verdict = deploys.check_claim(claim, definition, using=adapter.using)
    if verdict is deploys.ClaimCheck.RELEASE:
        adapter.nack(claim)
    elif verdict is deploys.ClaimCheck.PARKED:
        adapter.ack(claim)
    return verdict is not deploys.ClaimCheck.RUN


# -- running -----------------------------------------------------------------------------


@dataclass
class _Raised:
    error: BaseException


def invoke(run: Run) -> Outcome:
    """Run a prepared claim on this thread (an async step on the process's shared loop,
    which only inline runs use) and return its outcome. A transactional step is
    checkpointed here, in its own transaction: its outcome is then `Committed`."""
    if isinstance(run.method, Failure):
        return _failed(run, run.method)
    if run.step.transactional:
        return _run_transactional(run)
    with _following(run):
        raw = run_coroutine(_awaited(run), None) if run.is_async else _called(run)
    if (
        isinstance(raw, _Raised)
        and isinstance(raw.error, KeyboardInterrupt)
        and threading.current_thread() is threading.main_thread()
    ):
        # Python delivers Ctrl-C to the main thread only, and workers run steps on pool
        # threads or their event loop: there it is step code's own raise. On the main
        # thread it is an inline run (durable.testing.run_until_idle) being interrupted,
        # which must stop, not record.
        raise raw.error
    return _conclude(run, raw)


async def invoke_async(run: Run) -> Outcome:
    """Run a prepared async step as a coroutine of the calling event loop."""
    assert run.is_async
    with _following(run):
        raw = await _awaited(run)
    return _conclude(run, raw)


def _following(run: Run) -> Any:
    if run.ctx is None:
        return nullcontext()
    # Lines logged so far reach the attempt's row while a long step runs.
    return livelogs.following(run.log, run.claim, run.using)


def _called(run: Run) -> Any:
    """Call a sync step: its return value, or _Raised."""
    assert not isinstance(run.method, Failure)
    started = time.monotonic()
    try:
        with capturing(run.log):
            result = run.method(*run.args)
    except BaseException as exc:
        return _Raised(exc)
    # A sync step cannot be interrupted; the worker fails it at the deadline, and a late
    # return is recorded as the timeout it was.
    if run.step.timeout is not None and time.monotonic() - started > run.step.timeout:
        return _Raised(_timeout(run.step))
    return result


async def _awaited(run: Run) -> Any:
    """Await an async step: its return value, or _Raised.

    A SystemExit or KeyboardInterrupt escaping an asyncio task would stop the loop, and a
    TimeoutError of the step's own must not be mistaken for its `timeout=` expiring. The
    capture is set here, inside the task, since a task does not inherit the submitting
    thread's context."""
    assert not isinstance(run.method, Failure)
    try:
        with capturing(run.log):
            coroutine: Coroutine[Any, Any, Any] = run.method(*run.args)
            return await asyncio.wait_for(_shielded(coroutine), run.step.timeout)
    except asyncio.CancelledError:
        raise  # the worker is going away: the claim is handed back
    except BaseException as exc:
        return _Raised(exc)


async def _shielded(coroutine: Coroutine[Any, Any, Any]) -> Any:
    # wait_for raises TimeoutError when the step's timeout expires; the step's own
    # TimeoutError is told apart by being re-raised as what it is, not as a timeout.
    try:
        return await coroutine
    except TimeoutError as exc:
        raise _OwnTimeout(exc) from exc


class _OwnTimeout(Exception):
    def __init__(self, error: TimeoutError) -> None:
        self.error = error


def _timeout(step: StepNode) -> StepTimeout:
    return StepTimeout(f"step {step.name!r} ran past its timeout of {step.timeout:g}s")


def _conclude(run: Run, raw: Any) -> Outcome:
    """The outcome of a run that returned `raw` (or raised: `_Raised`)."""
    if isinstance(raw, _Raised):
        error = raw.error
        if isinstance(error, _OwnTimeout):
            error = error.error
        elif isinstance(error, TimeoutError) and run.is_async:
            error = _timeout(run.step)
        if isinstance(error, Suspend) and run.ctx is not None:
            assert run.waits is not None
            return Parked(
                run.claim,
                run.definition,
                duration_ms=run.duration_ms(),
                logs=run.log.finish(),
                waits=run.waits.effects,
                wait=error.wait,
            )
        return _failed(run, _failure(error))
    try:
        output = normalize(raw, f"return value of step {run.step.name!r}")
    except NotJSONError as exc:
        return _failed(run, _failure(exc))
    if run.ctx is None:
        return Compensated(
            run.claim,
            run.definition,
            duration_ms=run.duration_ms(),
            logs=run.log.finish(),
            output=output,
        )
    assert run.waits is not None
    return Succeeded(
        run.claim,
        run.definition,
        duration_ms=run.duration_ms(),
        logs=run.log.finish(),
        waits=run.waits.effects,
        ops=run.ctx.ops,
        output=output,
        # Asked now, not when the step started: a stop or the --max-tasks count may have
        # come meanwhile.
        chain=run.chain if run.chain is not None and run.chain.allowed() else None,
    )


def _failure(error: BaseException) -> Failure:
    """What an exception raised by a step (or by making its output) comes to."""
    if isinstance(error, NonRetryable):
        cause = error.error if isinstance(error.error, BaseException) else error
        return Failure({**error_record(cause), "non_retryable": True}, retryable=False)
    if isinstance(error, NotJSONError | Suspend) or not isinstance(error, Exception):
        # SystemExit, KeyboardInterrupt & co. raised by step code end the attempt, not the
        # worker; they are not retried, since they mean "stop". A wait in a compensation
        # is a mistake no retry mends.
        return Failure({**error_record(error), "non_retryable": True}, retryable=False)
    return Failure(error_record(error), retryable=True)


def _failed(run: Run, failure: Failure) -> Outcome:
    """The outcome of a run that failed with `failure`: its log ends with the error."""
    error = failure.error
    run.log.add(
        level="ERROR",
        message=error.get("traceback") or f"{error['type']}: {error['message']}",
        logger="durable",
        stream="durable",
        keep=True,
    )
    logs = run.log.finish()
    if run.ctx is None:
        return Compensated(
            run.claim,
            run.definition,
            duration_ms=run.duration_ms(),
            logs=logs,
            error=error,
            retryable=failure.retryable,
        )
    return Failed(
        run.claim,
        run.definition,
        duration_ms=run.duration_ms(),
        logs=logs,
        waits=run.waits.effects if run.waits is not None else None,
        error=error,
        retryable=failure.retryable,
    )


@dataclass
class Committed(Outcome):
    """A transactional step whose writes and checkpoint committed (or did not) together."""

    result: Result | None = None

    def settled(self) -> Result:
        return self.result if self.result is not None else Settled()


class _RolledBack(Exception):
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def _run_transactional(run: Run) -> Outcome:
    """Run the step and checkpoint it in ONE transaction on Durable's database, so the
    step's ORM writes commit exactly when its checkpoint does: a crash, a failure, a wait
    or a lost lease rolls them back with it."""
    try:
        with transaction.atomic(using=run.using):
            outcome = _conclude(run, _called(run))
            if not isinstance(outcome, Succeeded):
                raise _RolledBack(outcome)
            [result] = checkpoint.apply([outcome], using=run.using)
            if isinstance(result, Exception):
                raise result
    except _RolledBack as rolled_back:
        return rolled_back.outcome
    except (*TRANSIENT, LeaseLost, WaitConflict) as exc:
        return Committed(run.claim, run.definition, result=exc)
    except Exception as exc:
        return _failed(run, _unstorable(f"step {run.step.name!r}", run.claim, exc))
    tell_adapter(run.adapter, outcome, result)
    return Committed(run.claim, run.definition, duration_ms=outcome.duration_ms, result=result)


def _unstorable(what: str, claim: ClaimedTask, exc: Exception) -> Failure:
    """The failure recorded when an outcome cannot be checkpointed for a reason other than
    a lost connection (the database refused a value, say). Handing the claim back would
    run it again and again, since a release counts no attempt; it fails instead."""
    logger.error("could not store the outcome of %s of %s: %s", what, claim.workflow_id, exc)
    cause = error_record(exc, with_traceback=False)
    problem = NonRetryable(
        f"the outcome of {what} could not be stored: {cause['type']}: {cause['message']}"
    )
    return Failure({**error_record(problem, with_traceback=False), "non_retryable": True}, False)


# -- checkpointing -----------------------------------------------------------------------


# What `settled` answers for a result that needs `recover`.
RECOVER = object()


def settled(outcome: Outcome, result: Result) -> ClaimedTask | object | None:
    """The claim the checkpoint of `outcome` chained (or None) once `result` settles it;
    RECOVER when it did not commit and `recover` must say what happens instead."""
    if isinstance(result, Settled):
        _log(outcome, result)
        return result.chained
    if isinstance(result, LeaseLost):
        logger.warning("checkpoint rejected: %s", result)
        return None
    return RECOVER


def recover(outcome: Outcome, result: Result, adapter: QueueAdapter) -> Outcome | None:
    """After a checkpoint that did not commit: hand the claim back (None), or, when the
    database refused a value of the outcome rather than the connection, the failure to
    record instead (once: if that is refused too, the claim goes back)."""
    claim = outcome.claim
    if isinstance(result, WaitConflict):
        # An expected race (two branches took one event): the run is handed back to retry.
        logger.info("%s; running it again", result)
        _release(claim, adapter)
        return None
    if isinstance(result, TRANSIENT) or isinstance(outcome, Unstorable | UnstorableCompensation):
        # The database went away, or even the failure could not be stored. If the release
        # fails too, the lease expires and another worker retakes the task.
        logger.warning(
            "could not checkpoint %s %r of %s (%s); releasing it",
            claim.kind,
            claim.step,
            claim.workflow_id,
            result,
        )
        close_stale_connections()
        _release(claim, adapter)
        return None
    assert isinstance(result, Exception)
    what = f"step {claim.step!r}"
    if claim.kind == "compensate" and outcome.definition is not None:
        what = f"compensation {outcome.definition.step(claim.step).compensate!r}"
    error = _unstorable(what, claim, result).error
    logs = [
        *(outcome.logs or []),
        {
            "timestamp": timezone.now().isoformat(),
            "level": "ERROR",
            "message": f"{error['type']}: {error['message']}",
            "logger": "durable",
            "stream": "durable",
        },
    ]
    if isinstance(outcome, Compensated):
        return UnstorableCompensation(
            claim, outcome.definition, duration_ms=outcome.duration_ms, logs=logs, error=error
        )
    return Unstorable(
        claim,
        outcome.definition,
        duration_ms=outcome.duration_ms,
        logs=logs,
        error=error,
        retryable=False,
    )


@dataclass
class Unstorable(Failed):
    """The failure recorded in place of a step outcome the database refused."""


@dataclass
class UnstorableCompensation(Compensated):
    """The failure recorded in place of a compensation outcome the database refused."""


def _log(outcome: Outcome, result: Settled) -> None:
    claim = outcome.claim
    if isinstance(outcome, Succeeded | Committed):
        # Debug: at thousands of steps a second, a line each would cost more than the step.
        logger.debug(
            "step %s of %s completed in %d ms", claim.step, claim.workflow_id, outcome.duration_ms
        )
    elif isinstance(outcome, Parked):
        logger.info("step %s of %s is %s", claim.step, claim.workflow_id, outcome.wait)
    elif isinstance(outcome, Failed):
        logger.info(
            "step %s of %s failed (attempt %d): %s%s",
            claim.step,
            claim.workflow_id,
            claim.attempt,
            outcome.error.get("message"),
            f"; retrying at {result.retry_at:%H:%M:%S}" if result.retry_at else "",
        )
    elif isinstance(outcome, Compensated):
        logger.info(
            "compensation %s of %s %s",
            claim.step,
            claim.workflow_id,
            "failed" if outcome.error else "completed",
        )


def _release(claim: ClaimedTask, adapter: QueueAdapter) -> None:
    try:
        adapter.nack(claim)
    except Exception:
        logger.exception(
            "could not release %s %r of %s; its lease will expire",
            claim.kind,
            claim.step,
            claim.workflow_id,
        )


def execute(
    claim: ClaimedTask, adapter: QueueAdapter, *, chain: Chain | None = None
) -> ClaimedTask | None:
    """Run `claim` to its checkpoint on this thread; the claim its checkpoint chained
    (with a `chain`), to be run next. Never raises for what the step or the checkpoint
    does."""
    close_stale_connections()
    try:
        return _execute(claim, adapter, chain)
    except Exception:
        logger.exception(
            "could not run %s %r of %s; releasing it", claim.kind, claim.step, claim.workflow_id
        )
        close_stale_connections()
        _release(claim, adapter)
        return None
    finally:
        close_stale_connections()


def _execute(claim: ClaimedTask, adapter: QueueAdapter, chain: Chain | None) -> ClaimedTask | None:
    if not adapter.capabilities.chains_claims:
        chain = None
    prepared = prepare(claim, adapter, chain=chain)
    if prepared is None:
        return None
    outcome = invoke(prepared) if isinstance(prepared, Run) else prepared
    committer = Inline(adapter)

    def checkpoint_now(outcome: Outcome) -> Result:
        if isinstance(outcome, Committed):
            return outcome.settled()
        return committer.submit(outcome).result()

    result = checkpoint_now(outcome)
    while True:
        chained = settled(outcome, result)
        if chained is not RECOVER:
            return chained  # type: ignore[return-value]
        recovery = recover(outcome, result, adapter)
        if recovery is None:
            return None
        outcome, result = recovery, checkpoint_now(recovery)
