"""`ctx.cancelled` and `ctx.raise_if_cancelled()` in inline runs, and the cancellation
record a worker shares with a running step."""

from __future__ import annotations

import time

import pytest

from durable import StepCancelled
from durable.flow.cancellation import Cancellation
from durable.flow.context import Context
from durable.testing import run_workflow
from tests.semantics import workflows as wf

pytestmark = pytest.mark.django_db


def test_sync_step_raising_when_cancelled_fails_as_its_timeout() -> None:
    started = time.monotonic()
    execution = run_workflow(wf.InlineCooperative, {})

    assert time.monotonic() - started < 2
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.StepTimeout"
    assert "'loop' ran past its timeout of 0.2s" in execution.error["message"]


def test_step_within_its_timeout_is_not_cancelled() -> None:
    execution = run_workflow(wf.InlineNotCancelled, {})

    assert (execution.status, execution.result) == ("completed", False)


def test_async_step_past_its_timeout_is_cancelled_and_sees_ctx_cancelled() -> None:
    wf.SEEN.clear()
    execution = run_workflow(wf.InlineAsyncTimeout, {})

    assert execution.error["type"] == "durable.exceptions.StepTimeout"
    assert wf.SEEN == [True]


def test_cancellation_keeps_its_first_reason() -> None:
    cancellation = Cancellation()
    ctx = Context({}, current_step="charge", cancellation=cancellation)
    assert not ctx.cancelled
    ctx.raise_if_cancelled()

    cancellation.cancel("its lease was lost")
    cancellation.cancel("the worker is shutting down")

    assert ctx.cancelled
    assert not cancellation.timed_out
    with pytest.raises(StepCancelled, match="'charge' was asked to stop: its lease was lost"):
        ctx.raise_if_cancelled()


def test_deadline_cancels_without_anyone_asking() -> None:
    cancellation = Cancellation()
    cancellation.start(0)

    assert cancellation.requested
    assert cancellation.timed_out


def test_context_without_a_worker_is_never_cancelled() -> None:
    ctx = Context({})

    ctx.raise_if_cancelled()
    assert ctx.cancelled is False
