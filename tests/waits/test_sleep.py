"""Durable sleeps, run inline: parked until the deadline, not a moment before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

import durable
from durable.models import StepExecution, Task
from durable.testing import advance_time, run_until_idle
from tests.waits import workflows as wf
from tests.waits.support import parked, status

pytestmark = pytest.mark.django_db


def test_sleep_for_parks_the_workflow_without_holding_a_task_claim() -> None:
    before = timezone.now()
    wid = durable.start(wf.SleepFor, {"seconds": 3600})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert (execution.status, execution.current_step) == ("waiting", "nap")
    (task,) = parked(wid)
    assert task.lease_token is None
    assert task.leased_by == ""
    assert task.wait["kind"] == "sleep"
    assert before + timedelta(seconds=3600) <= task.run_at
    assert task.run_at <= timezone.now() + timedelta(seconds=3600)
    (attempt,) = StepExecution.objects.filter(execution=execution, step="nap")
    assert attempt.status == "waiting"


def test_sleep_for_resumes_after_the_duration_and_not_before() -> None:
    wid = durable.start(wf.SleepFor, {"seconds": 3600})
    run_until_idle()

    assert advance_time(timedelta(minutes=59, seconds=58)) == 0
    assert run_until_idle() == 0
    assert status(wid) == "waiting"
    assert wf.TRACE[wid] == ["start"]

    assert advance_time(timedelta(seconds=3)) == 1
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["after"] is True
    # Run again from its start once woken; the code after the sleep ran once.
    assert wf.TRACE[wid] == ["start", "start", "effect"]
    (attempt,) = StepExecution.objects.filter(execution=execution, step="nap")
    assert (attempt.attempt, attempt.status) == (1, "completed")


@pytest.mark.parametrize("keyword", ["seconds", "minutes", "hours", "days"])
def test_sleep_for_accepts_each_unit(keyword: str) -> None:
    class_seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}[keyword]
    wid = durable.start(wf.SleepFor, {"seconds": class_seconds})
    run_until_idle()
    (task,) = parked(wid)
    expected = task.created_at + timedelta(seconds=class_seconds)
    assert abs((task.run_at - expected).total_seconds()) < 5


def test_sleep_for_zero_does_not_wait() -> None:
    wid = durable.start(wf.SleepFor, {"seconds": 0})
    run_until_idle()

    assert status(wid) == "completed"
    assert wf.TRACE[wid] == ["start", "effect"]


def test_a_negative_duration_fails_the_step_clearly() -> None:
    wid = durable.start(wf.SleepFor, {"seconds": -1})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "ValueError"
    assert "seconds= must be a number >= 0" in execution.error["message"]


def test_sleep_until_an_aware_datetime_in_another_zone_wakes_at_that_instant() -> None:
    plus_five = dt_timezone(timedelta(hours=5))
    until = (timezone.now() + timedelta(hours=2)).astimezone(plus_five)
    wid = durable.start(wf.SleepUntil, {"until": until.isoformat()})
    run_until_idle()

    (task,) = parked(wid)
    assert task.run_at == until
    advance_time(timedelta(hours=1, minutes=59))
    run_until_idle()
    assert status(wid) == "waiting"

    advance_time(timedelta(minutes=1, seconds=1))
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error


def test_sleep_until_a_past_instant_does_not_wait() -> None:
    until = datetime(2000, 1, 1, tzinfo=UTC)
    wid = durable.start(wf.SleepUntil, {"until": until.isoformat()})
    run_until_idle()

    assert status(wid) == "completed"
    assert not Task.objects.exists()


def test_sleep_until_a_naive_datetime_fails_the_step_with_a_clear_error() -> None:
    wid = durable.start(wf.SleepUntil, {"until": "naive"})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "ValueError"
    assert "sleep_until() needs a timezone-aware datetime" in execution.error["message"]
    assert not Task.objects.filter(execution=execution).exists()
