"""Runs one claimed task (a step attempt or a compensation) and checkpoints its outcome.

`execute` never raises: every outcome, including `BaseException`s from user code and
values that cannot be stored, ends as a recorded checkpoint or a released claim.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from durable.dsl import registry
from durable.dsl.nodes import Definition, StepNode
from durable.engine.async_runner import run_coroutine
from durable.exceptions import (
    LeaseLost,
    NonRetryable,
    StepTimeout,
    WorkflowNotFound,
    WorkflowTimeout,
)
from durable.flow.context import Context
from durable.queue.base import QueueAdapter
from durable.serialization import NotJSONError, normalize
from durable.store import checkpoints
from durable.store.records import ClaimedTask, error_record

logger = logging.getLogger("durable.worker")


@dataclass
class Failure:
    error: dict[str, Any]
    retryable: bool


def execute(claim: ClaimedTask, adapter: QueueAdapter) -> None:
    """Run `claim` to its checkpoint. Safe to call from any thread."""
    close_old_connections()
    try:
        _execute(claim, adapter)
    except LeaseLost as exc:
        logger.warning("checkpoint rejected: %s", exc)
    except Exception:
        # The checkpoint itself failed (database gone, say): hand the claim back. If even
        # that fails, the lease expires and another worker retakes the task.
        logger.exception("could not checkpoint %s %r of %s; releasing it", claim.kind,
                         claim.step, claim.workflow_id)
        try:
            adapter.nack(claim)
        except Exception:
            logger.exception("could not release %s %r of %s; its lease will expire",
                             claim.kind, claim.step, claim.workflow_id)
    finally:
        close_old_connections()


def _execute(claim: ClaimedTask, adapter: QueueAdapter) -> None:
    using = adapter.using
    started = time.monotonic()
    try:
        definition = registry.get(claim.workflow_name)
        step = definition.step(claim.step)
    except (WorkflowNotFound, KeyError, AssertionError) as exc:
        problem = NonRetryable(f"this worker cannot run {claim.kind} {claim.step!r} of "
                               f"workflow {claim.workflow_name!r}: {exc}")
        checkpoints.fail_step(claim, None, error=error_record(problem, with_traceback=False),
                              retryable=False, duration_ms=0, using=using)
        return
    if claim.kind == "compensate":
        _compensate(claim, definition, step, adapter, started)
        return
    if claim.deadline_at is not None and timezone.now() >= claim.deadline_at:
        timeout = WorkflowTimeout(f"workflow {definition.name!r} passed its timeout of "
                                  f"{definition.timeout:g}s before step {step.name!r}")
        checkpoints.fail_step(claim, definition, error=error_record(timeout, with_traceback=False),
                              retryable=False, duration_ms=0, using=using)
        return
    ctx = Context(claim.context, input=claim.input, workflow_id=claim.workflow_id,
                  current_step=step.name, attempt=claim.attempt)
    args: tuple[Any, ...] = (ctx, claim.token.item) if step.takes_item else (ctx,)
    method = getattr(definition.workflow_class(), step.method)
    logger.debug("running %s of %s (attempt %d)", step.name, claim.workflow_id, claim.attempt)
    outcome = _invoke(method, args, step)
    duration_ms = int((time.monotonic() - started) * 1000)
    if isinstance(outcome, Failure):
        retry_at = checkpoints.fail_step(claim, definition, error=outcome.error,
                                         retryable=outcome.retryable, duration_ms=duration_ms,
                                         using=using)
        logger.info("step %s of %s failed (attempt %d): %s%s", step.name, claim.workflow_id,
                    claim.attempt, outcome.error["message"],
                    f"; retrying at {retry_at:%H:%M:%S}" if retry_at else "")
        if retry_at is not None:
            adapter.reschedule(claim, retry_at)
        return
    checkpoints.complete_step(claim, definition, ops=ctx.ops, output=outcome,
                              duration_ms=duration_ms, using=using)
    adapter.ack(claim)
    logger.info("step %s of %s completed in %d ms", step.name, claim.workflow_id, duration_ms)


def _invoke(method: Callable[..., Any], args: tuple[Any, ...], step: StepNode) -> Any:
    """Call the step; return its normalised output, or a Failure describing what went wrong."""
    started = time.monotonic()
    try:
        if step.is_async:
            try:
                result = run_coroutine(method(*args), step.timeout)
            except TimeoutError:
                raise StepTimeout(f"step {step.name!r} ran past its timeout of "
                                  f"{step.timeout:g}s") from None
        else:
            result = method(*args)
            # A sync step cannot be interrupted; the worker's supervisor fails it at the
            # deadline, and a late return is recorded as the timeout it was.
            if step.timeout is not None and time.monotonic() - started > step.timeout:
                raise StepTimeout(f"step {step.name!r} ran past its timeout of "
                                  f"{step.timeout:g}s")
        return normalize(result, f"return value of step {step.name!r}")
    except NonRetryable as exc:
        cause = exc.error if isinstance(exc.error, BaseException) else exc
        return Failure({**error_record(cause), "non_retryable": True}, retryable=False)
    except NotJSONError as exc:
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)
    except Exception as exc:
        return Failure(error_record(exc), retryable=True)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt & co. raised by step code end the attempt, not the
        # worker; they are not retried, since they mean "stop".
        return Failure({**error_record(exc), "non_retryable": True}, retryable=False)


def _compensate(claim: ClaimedTask, definition: Definition, step: StepNode,
                adapter: QueueAdapter, started: float) -> None:
    assert step.compensate is not None
    method = getattr(definition.workflow_class(), step.compensate)
    ctx = Context(claim.context, input=claim.input, workflow_id=claim.workflow_id,
                  current_step=step.compensate, attempt=claim.attempt)
    takes_item = len(inspect.signature(method).parameters) >= 2
    args: tuple[Any, ...] = (ctx, claim.token.item) if takes_item else (ctx,)
    compensation = StepNode(name=step.compensate, method=step.compensate,
                            is_async=inspect.iscoroutinefunction(method), timeout=step.timeout)
    outcome = _invoke(method, args, compensation)
    duration_ms = int((time.monotonic() - started) * 1000)
    failure = outcome if isinstance(outcome, Failure) else None
    checkpoints.complete_compensation(
        claim, definition, error=failure.error if failure else None,
        retryable=failure.retryable if failure else False, duration_ms=duration_ms,
        using=adapter.using,
    )
    logger.info("compensation %s of %s %s", step.compensate, claim.workflow_id,
                "failed" if failure else "completed")
