"""Runs one claimed task (a step attempt or a compensation) and checkpoints its outcome.

`execute` never raises: every outcome, including `BaseException`s from user code and
values that cannot be stored, ends as a recorded checkpoint or a released claim. The one
exception is Ctrl-C (KeyboardInterrupt) on the main thread, which stops an inline run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl import registry
from durable.dsl.nodes import Definition, StepNode
from durable.engine import livelogs
from durable.engine.async_runner import run_coroutine
from durable.engine.connections import close_stale_connections
from durable.engine.groupcommit import GroupCommit
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
from durable.store import batch, checkpoints, deploys
from durable.store.batch import Alone, Completion
from durable.store.claims import Chain
from durable.store.records import ClaimedTask, WaitEffects, error_record

logger = logging.getLogger("durable.worker")


@dataclass
class Failure:
    error: dict[str, Any]
    retryable: bool


def execute(
    claim: ClaimedTask,
    adapter: QueueAdapter,
    *,
    chain: Chain | None = None,
    committer: GroupCommit | None = None,
) -> ClaimedTask | None:
    """Run `claim` to its checkpoint. Safe to call from any thread.

    With a `chain`, a successful checkpoint may claim the next step of the execution for
    this caller; that claim is returned, to be run next. With a `committer`, a successful
    step is checkpointed in its next batch, with the steps of other threads.
    """
    close_stale_connections()
    try:
        return _execute(claim, adapter, chain, committer)
    except LeaseLost as exc:
        logger.warning("checkpoint rejected: %s", exc)
    except WaitConflict as exc:
        # An expected race (two branches took one event): the run is handed back to retry.
        logger.info("%s; running it again", exc)
        _release(claim, adapter)
    except Exception:
        # The checkpoint itself failed (database gone, say): hand the claim back. If even
        # that fails, the lease expires and another worker retakes the task.
        logger.exception(
            "could not checkpoint %s %r of %s; releasing it",
            claim.kind,
            claim.step,
            claim.workflow_id,
        )
        # The release must not reuse the connection that just broke.
        close_stale_connections()
        _release(claim, adapter)
    finally:
        close_stale_connections()
    return None


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


# Failures of the connection, not of the data: the checkpoint may work on a retry, so the
# claim is handed back. LeaseLost means another worker owns the task now.
_TRANSIENT = (OperationalError, InterfaceError, LeaseLost, WaitConflict)


def _unstorable(what: str, claim: ClaimedTask, exc: Exception) -> dict[str, Any]:
    """The error recorded when an outcome cannot be checkpointed for a reason other than a
    lost connection (the database refused a value, say). Handing the claim back would run
    it again and again, since a release counts no attempt; it fails instead."""
    logger.exception("could not store the outcome of %s of %s", what, claim.workflow_id)
    cause = error_record(exc, with_traceback=False)
    problem = NonRetryable(
        f"the outcome of {what} could not be stored: {cause['type']}: {cause['message']}"
    )
    return {**error_record(problem, with_traceback=False), "non_retryable": True}


def _execute(
    claim: ClaimedTask,
    adapter: QueueAdapter,
    chain: Chain | None,
    committer: GroupCommit | None,
) -> ClaimedTask | None:
    using = adapter.using
    started = time.monotonic()
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
        _fail_unrun(claim, None, error_record(problem, with_traceback=False), using)
        return None
    limit = int(durable_settings.MAX_LEASE_EXPIRIES)
    if claim.expiries >= limit:
        lost = WorkerLost(
            f"the worker running {claim.kind} {claim.step!r} stopped {claim.expiries} times "
            f"before finishing it (killed? out of memory?); giving up "
            f"(DURABLE['MAX_LEASE_EXPIRIES'] = {limit})"
        )
        error = {**error_record(lost, with_traceback=False), "non_retryable": True}
        _fail_unrun(claim, definition, error, using)
        return None
    if claim.kind == "compensate":
        _compensate(claim, definition, step, adapter, started)
        return None
    if claim.deadline_at is not None and timezone.now() >= claim.deadline_at:
        timeout = WorkflowTimeout(
            f"workflow {definition.name!r} passed its timeout of "
            f"{definition.timeout:g}s before step {step.name!r}"
        )
        _fail_unrun(claim, definition, error_record(timeout, with_traceback=False), using)
        return None
    waits = StepWaits(claim, using)
    ctx = Context(
        claim.context,
        input=claim.input,
        workflow_id=claim.workflow_id,
        current_step=step.name,
        attempt=claim.attempt,
        waits=waits,
        progress_hook=ProgressReporter(
            claim.execution_pk, step.name, claim.token.scope_key(), claim.attempt, using
        ),
    )
    args: tuple[Any, ...] = (ctx, claim.token.item) if step.takes_item else (ctx,)
    method = _method(definition, step.method)
    log = StepLog(int(durable_settings.STEP_LOG_MAX_BYTES))
    logger.debug("running %s of %s (attempt %d)", step.name, claim.workflow_id, claim.attempt)
    try:
        if isinstance(method, Failure):
            outcome: Any = method
        elif step.transactional:
            outcome = _run_transactional(
                method, args, step, ctx, claim, definition, waits, started, log
            )
        else:
            # Lines logged so far reach the attempt's row while a long step runs.
            with livelogs.following(log, claim, using):
                outcome = _invoke(method, args, step, log)
    except Suspend as suspend:
        duration_ms = int((time.monotonic() - started) * 1000)
        try:
            checkpoints.park_step(
                claim,
                wait=suspend.wait,
                effects=waits.effects,
                duration_ms=duration_ms,
                using=using,
                logs=log.finish(),
            )
        except _TRANSIENT:
            raise
        except Exception as exc:
            _fail_unstorable(
                f"the wait of step {step.name!r}", claim, definition, exc, log, duration_ms, using
            )
            return None
        adapter.ack(claim)
        logger.info("step %s of %s is %s", step.name, claim.workflow_id, suspend)
        return None
    duration_ms = int((time.monotonic() - started) * 1000)
    if outcome is COMMITTED:
        adapter.ack(claim)
        logger.info("step %s of %s completed in %d ms", step.name, claim.workflow_id, duration_ms)
        return None
    if isinstance(outcome, Failure):
        retry_at = checkpoints.fail_step(
            claim,
            definition,
            error=outcome.error,
            retryable=outcome.retryable,
            duration_ms=duration_ms,
            using=using,
            waits=waits.effects,
            logs=_with_failure(log, outcome),
        )
        logger.info(
            "step %s of %s failed (attempt %d): %s%s",
            step.name,
            claim.workflow_id,
            claim.attempt,
            outcome.error["message"],
            f"; retrying at {retry_at:%H:%M:%S}" if retry_at else "",
        )
        if retry_at is not None:
            adapter.reschedule(claim, retry_at)
        return None
    try:
        chained = _complete(
            claim,
            definition,
            ctx,
            outcome,
            duration_ms,
            waits.effects,
            log.finish(),
            chain if _may_chain(chain, adapter) else None,
            committer,
            using,
        )
    except _TRANSIENT:
        raise
    except Exception as exc:
        _fail_unstorable(f"step {step.name!r}", claim, definition, exc, log, duration_ms, using)
        return None
    adapter.ack(claim)
    logger.info("step %s of %s completed in %d ms", step.name, claim.workflow_id, duration_ms)
    return chained


def _complete(
    claim: ClaimedTask,
    definition: Definition,
    ctx: Context,
    output: Any,
    duration_ms: int,
    effects: WaitEffects,
    logs: list[dict[str, Any]],
    chain: Chain | None,
    committer: GroupCommit | None,
    using: str,
) -> ClaimedTask | None:
    """Checkpoint a successful step: in the committer's next batch when it may join one,
    otherwise (or when the batch leaves it out) in a transaction of its own."""
    if committer is not None and batch.eligible(claim, definition, effects, using):
        result = committer.complete(
            Completion(claim, definition, ctx.ops, output, duration_ms, logs, chain)
        )
        if isinstance(result, LeaseLost):
            raise result
        if not isinstance(result, Alone):
            return result
    return checkpoints.complete_step(
        claim,
        definition,
        ops=ctx.ops,
        output=output,
        duration_ms=duration_ms,
        using=using,
        waits=effects,
        logs=logs,
        chain=chain,
    )


def _may_chain(chain: Chain | None, adapter: QueueAdapter) -> bool:
    return chain is not None and adapter.capabilities.chains_claims and chain.allowed()


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


def _fail_unrun(
    claim: ClaimedTask, definition: Definition | None, error: dict[str, Any], using: str
) -> None:
    """Fail an attempt without running it (nothing to retry, no traceback of ours). A
    compensation goes on to the next one; unloadable ones are ended by `fail_step`."""
    if claim.kind == "compensate" and definition is not None:
        checkpoints.complete_compensation(
            claim, definition, error=error, retryable=False, duration_ms=0, using=using
        )
    else:
        checkpoints.fail_step(
            claim, definition, error=error, retryable=False, duration_ms=0, using=using
        )


def _fail_unstorable(
    what: str,
    claim: ClaimedTask,
    definition: Definition,
    exc: Exception,
    log: StepLog,
    duration_ms: int,
    using: str,
) -> None:
    """Fail an attempt whose outcome the database refused. Handing the claim back instead
    would run (or park) it again and again, since a release counts no attempt."""
    failure = Failure(_unstorable(what, claim, exc), retryable=False)
    checkpoints.fail_step(
        claim,
        definition,
        error=failure.error,
        retryable=False,
        duration_ms=duration_ms,
        using=using,
        logs=_with_failure(log, failure),
    )


def _with_failure(log: StepLog, failure: Failure) -> list[dict[str, Any]]:
    """The attempt's log, ending with the failure and its traceback."""
    error = failure.error
    log.add(
        level="ERROR",
        message=error.get("traceback") or f"{error['type']}: {error['message']}",
        logger="durable",
        stream="durable",
        keep=True,
    )
    return log.finish()


# The outcome of a transactional step whose writes and checkpoint committed together.
COMMITTED = object()


class _RolledBack(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def _run_transactional(
    method: Callable[..., Any],
    args: tuple[Any, ...],
    step: StepNode,
    ctx: Context,
    claim: ClaimedTask,
    definition: Definition,
    waits: StepWaits,
    started: float,
    log: StepLog,
) -> Any:
    """Run the step and checkpoint it in ONE transaction on Durable's database, so the
    step's ORM writes commit exactly when its checkpoint does: a crash, a failure, a wait
    or a lost lease rolls them back with it. Returns COMMITTED or a Failure."""
    using = waits.using
    try:
        with transaction.atomic(using=using):
            outcome = _invoke(method, args, step, log)
            if isinstance(outcome, Failure):
                raise _RolledBack(outcome)
            checkpoints.complete_step(
                claim,
                definition,
                ops=ctx.ops,
                output=outcome,
                duration_ms=int((time.monotonic() - started) * 1000),
                using=using,
                waits=waits.effects,
                logs=log.finish(),
            )
    except _RolledBack as rolled_back:
        return rolled_back.failure
    except _TRANSIENT:
        raise
    except Exception as exc:
        return Failure(_unstorable(f"step {step.name!r}", claim, exc), retryable=False)
    return COMMITTED


@dataclass
class _Raised:
    error: BaseException


async def _capture(coroutine: Coroutine[Any, Any, Any], log: StepLog | None) -> Any:
    """Await a step, handing back what it raised instead of raising it on the event loop.

    A SystemExit or KeyboardInterrupt escaping an asyncio task stops the shared loop, so
    this and every later async step would wait forever; and a TimeoutError of the step's
    own must not be mistaken for its `timeout=` expiring. The step's log capture is set
    here, inside the task, since a task does not inherit the submitting thread's context.
    """
    try:
        if log is None:
            return await coroutine
        with capturing(log):
            return await coroutine
    except asyncio.CancelledError:
        raise  # how the step's timeout stops it
    except BaseException as exc:
        return _Raised(exc)


def _method(definition: Definition, name: str) -> Callable[..., Any] | Failure:
    """Method `name` of a fresh workflow instance. An `__init__` that raises fails the
    attempt like the step would; escaping as a checkpoint error, it would hand the claim back
    to run again forever (a release counts no attempt)."""
    try:
        return getattr(definition.workflow_class(), name)  # type: ignore[no-any-return]
    except Exception as exc:
        return Failure(error_record(exc), retryable=True)
    except BaseException as exc:
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)


def _invoke(
    method: Callable[..., Any], args: tuple[Any, ...], step: StepNode, log: StepLog | None = None
) -> Any:
    """Call the step; return its normalised output, or a Failure describing what went wrong.
    What it logs and prints goes to `log`."""
    started = time.monotonic()
    try:
        if step.is_async:
            try:
                result = run_coroutine(_capture(method(*args), log), step.timeout)
            except TimeoutError:
                raise StepTimeout(
                    f"step {step.name!r} ran past its timeout of {step.timeout:g}s"
                ) from None
            if isinstance(result, _Raised):
                raise result.error
        else:
            with capturing(log) if log is not None else nullcontext(log):
                result = method(*args)
            # A sync step cannot be interrupted; the worker's supervisor fails it at the
            # deadline, and a late return is recorded as the timeout it was.
            if step.timeout is not None and time.monotonic() - started > step.timeout:
                raise StepTimeout(f"step {step.name!r} ran past its timeout of {step.timeout:g}s")
        return normalize(result, f"return value of step {step.name!r}")
    except Suspend:
        raise  # not a failure: the step parks on a wait
    except NonRetryable as exc:
        cause = exc.error if isinstance(exc.error, BaseException) else exc
        return Failure({**error_record(cause), "non_retryable": True}, retryable=False)
    except NotJSONError as exc:
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)
    except Exception as exc:
        return Failure(error_record(exc), retryable=True)
    except BaseException as exc:
        # Python delivers Ctrl-C to the main thread only, and workers run steps in pool
        # threads: there it is step code's own raise. On the main thread it is an inline run
        # (durable.testing.run_until_idle) being interrupted, which must stop, not record.
        if (
            isinstance(exc, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()
        ):
            raise
        # SystemExit, KeyboardInterrupt & co. raised by step code end the attempt, not the
        # worker; they are not retried, since they mean "stop".
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)


def _compensate(
    claim: ClaimedTask,
    definition: Definition,
    step: StepNode,
    adapter: QueueAdapter,
    started: float,
) -> None:
    assert step.compensate is not None
    method = _method(definition, step.compensate)
    log = StepLog(int(durable_settings.STEP_LOG_MAX_BYTES))
    if isinstance(method, Failure):
        outcome: Any = method
    else:
        ctx = Context(
            claim.context,
            input=claim.input,
            workflow_id=claim.workflow_id,
            current_step=step.compensate,
            attempt=claim.attempt,
        )
        takes_item = len(inspect.signature(method).parameters) >= 2
        args: tuple[Any, ...] = (ctx, claim.token.item) if takes_item else (ctx,)
        compensation = StepNode(
            name=step.compensate,
            method=step.compensate,
            is_async=inspect.iscoroutinefunction(method),
            timeout=step.timeout,
        )
        outcome = _invoke(method, args, compensation, log)
    duration_ms = int((time.monotonic() - started) * 1000)
    failure = outcome if isinstance(outcome, Failure) else None
    try:
        checkpoints.complete_compensation(
            claim,
            definition,
            error=failure.error if failure else None,
            retryable=failure.retryable if failure else False,
            duration_ms=duration_ms,
            using=adapter.using,
            output=None if failure else outcome,
            logs=_with_failure(log, failure) if failure else log.finish(),
        )
    except _TRANSIENT:
        raise
    except Exception as exc:
        failure = Failure(_unstorable(f"compensation {step.compensate!r}", claim, exc), False)
        checkpoints.complete_compensation(
            claim,
            definition,
            error=failure.error,
            retryable=False,
            duration_ms=duration_ms,
            using=adapter.using,
        )
    logger.info(
        "compensation %s of %s %s",
        step.compensate,
        claim.workflow_id,
        "failed" if failure else "completed",
    )
