"""Retry policies: attempts are numbered, spaced by their backoff, and stop when told."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from django.utils import timezone

import durable
from durable.models import WorkflowExecution
from durable.testing import run_until_idle, run_workflow
from tests.integration import workflows as wf
from tests.integration.support import attempts, claim_one, make_due, ready_task, run_next, tasks_of

pytestmark = pytest.mark.django_db


def observed_delays(workflow, failures: int) -> list[float]:
    """Run `failures` failing attempts; return the gap between each failure and its retry."""
    wid = durable.start(workflow, {})
    delays = []
    for attempt in range(1, failures + 1):
        claim = run_next()
        assert claim.attempt == attempt
        (failed,) = [row for row in attempts(wid, "shaky") if row.attempt == attempt]
        assert failed.status == "failed"
        task = ready_task(wid)
        assert task.attempt == attempt + 1
        assert claim_one() is None, "a task in its backoff must not be claimable"
        delays.append((task.run_at - failed.completed_at).total_seconds())
        make_due(wid)
    return delays


def assert_delays(actual: list[float], expected: list[float]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got == pytest.approx(want, abs=0.5), (actual, expected)


def test_exponential_backoff_waits_base_to_the_attempt_number() -> None:
    # Retry(max_attempts=4, exponential, base=2): 2**1, 2**2, 2**3 seconds.
    assert_delays(observed_delays(wf.Flaky, 3), [2, 4, 8])


def test_exponential_backoff_is_capped_at_max_backoff() -> None:
    # base=3, max_backoff=20: 3, 9, min(27, 20), min(81, 20).
    assert_delays(observed_delays(wf.FlakyCapped, 4), [3, 9, 20, 20])


def test_linear_backoff_grows_by_base_and_is_capped() -> None:
    # base=5, max_backoff=12: 5, 10, min(15, 12).
    assert_delays(observed_delays(wf.FlakyLinear, 3), [5, 10, 12])


def test_constant_backoff_waits_the_same_every_time() -> None:
    assert_delays(observed_delays(wf.FlakyConstant, 2), [7, 7])


def test_retries_exhausted_fail_the_workflow_with_one_row_per_attempt() -> None:
    execution = run_workflow(wf.FlakyConstant, {})

    assert execution.status == "failed"
    rows = attempts(execution.workflow_id, "shaky")
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert [r.error["message"] for r in rows] == [
        "attempt 1 failed",
        "attempt 2 failed",
        "attempt 3 failed",
    ]
    assert all(r.error["type"] == "ConnectionError" for r in rows)
    assert "Traceback" in rows[0].error["traceback"]
    assert execution.error["message"] == "attempt 3 failed"
    assert tasks_of(execution.workflow_id) == []


def test_a_step_that_recovers_on_a_retry_completes_with_that_attempt() -> None:
    execution = run_workflow(wf.Flaky, {"succeed_on": 3})

    assert execution.status == "completed", execution.error
    assert execution.result == 3
    rows = attempts(execution.workflow_id, "shaky")
    assert [(r.attempt, r.status) for r in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert rows[2].output == 3


def test_workflow_max_retries_applies_to_steps_without_retry() -> None:
    execution = run_workflow(wf.DefaultRetries, {})

    assert execution.status == "failed"
    assert [r.attempt for r in attempts(execution.workflow_id, "always_fails")] == [1, 2]


def test_non_retryable_fails_at_once_with_the_wrapped_error() -> None:
    execution = run_workflow(wf.GivesUp, {})

    assert execution.status == "failed"
    rows = attempts(execution.workflow_id, "refuse")
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed")]
    assert rows[0].error["type"] == "ValueError"
    assert rows[0].error["message"] == "card declined"
    assert rows[0].error["non_retryable"] is True
    assert execution.error["message"] == "card declined"


def test_real_clock_retries_are_not_run_before_their_backoff() -> None:
    # Retry(max_attempts=3, linear, base=0.4): waits 0.4 s, then 0.8 s.
    wid = durable.start(wf.FlakyFast, {})
    deadline = time.monotonic() + 10
    while WorkflowExecution.objects.get(workflow_id=wid).status == "running" or tasks_of(wid):
        assert time.monotonic() < deadline, "the retries never ran"
        run_until_idle(skip_delays=False)
        time.sleep(0.05)

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.result == "finally"
    rows = attempts(wid, "shaky")
    assert [r.attempt for r in rows] == [1, 2, 3]
    gaps = [
        (later.started_at - earlier.completed_at).total_seconds()
        for earlier, later in itertools.pairwise(rows)
    ]
    assert gaps[0] >= 0.4
    assert gaps[1] >= 0.8
    assert gaps[0] < 0.4 + 1.5
    assert gaps[1] < 0.8 + 1.5


def test_run_until_idle_with_skip_delays_false_leaves_the_retry_waiting() -> None:
    wid = durable.start(wf.FlakyConstant, {})
    assert run_until_idle(skip_delays=False) == 1
    task = ready_task(wid)
    assert task.attempt == 2
    assert task.run_at > timezone.now() + timedelta(seconds=5)
    assert WorkflowExecution.objects.get(workflow_id=wid).status == "running"


def test_writes_of_a_failed_attempt_are_discarded_before_the_retry() -> None:
    execution = run_workflow(wf.ForgetsFailedWrites, {})

    assert execution.status == "completed", execution.error
    assert execution.result == {"half_done": None, "log": None}
    assert execution.context["log"] == [2]
