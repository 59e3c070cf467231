"""Rate limits pace starts: each due start gets the next free slot of its scope."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from django.test import override_settings
from django.utils import timezone

import durable
from durable.models import Task
from tests.flowcontrol import workflows as wf
from tests.integration.support import run_next

pytestmark = pytest.mark.django_db


def most_in_any_window(times: list[datetime], window: timedelta) -> int:
    """The largest number of `times` inside one half-open window [t, t + window)."""
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


def first_run_at(wid: str) -> datetime:
    return Task.objects.get(execution__workflow_id=wid).run_at


def test_a_workflow_rate_limit_spaces_its_starts_evenly() -> None:
    ids = [durable.start(wf.TenPerSecond, {}) for _ in range(25)]
    run_ats = [first_run_at(w) for w in ids]

    assert run_ats == sorted(run_ats)
    # Starts closer together than a slot wait; a slow caller's starts are simply due.
    gaps = [b - a for a, b in pairwise(run_ats)]
    assert min(gaps) >= timedelta(milliseconds=100)
    assert most_in_any_window(run_ats, timedelta(seconds=1)) <= 10


def test_a_rate_limit_key_gives_each_key_its_own_budget() -> None:
    a = [durable.start(wf.FivePerSecondPerAccount, {"account": "a"}) for _ in range(3)]
    b = durable.start(wf.FivePerSecondPerAccount, {"account": "b"})

    assert first_run_at(a[1]) - first_run_at(a[0]) >= timedelta(milliseconds=200)
    assert first_run_at(b) < first_run_at(a[1])


def test_a_paced_task_is_not_claimed_before_its_slot() -> None:
    durable.start(wf.OnePerMinute, {"customer": "a"})
    second = durable.start(wf.OnePerMinute, {"customer": "b"})
    run_next()

    assert first_run_at(second) > timezone.now()
    with pytest.raises(AssertionError, match="no due task"):
        run_next()


def test_an_idle_scope_starts_at_once() -> None:
    before = timezone.now()
    wid = durable.start(wf.TenPerSecond, {})
    assert before <= first_run_at(wid) <= timezone.now()


def test_scheduled_starts_are_not_paced() -> None:
    at = timezone.now() + timedelta(hours=1)
    ids = [durable.start(wf.TenPerSecond, {}, scheduled_at=at) for _ in range(3)]
    assert [first_run_at(w) for w in ids] == [at, at, at]
    # ... and do not push the slots of starts due now.
    assert first_run_at(durable.start(wf.TenPerSecond, {})) <= timezone.now()


QUEUES = {"default": {"concurrency": 4, "rate_limit": "120/m"}, "other": {"concurrency": 4}}


@override_settings(DURABLE={"QUEUES": QUEUES})
def test_a_queue_rate_limit_paces_every_step_queued_on_it() -> None:
    first = durable.start(wf.OnePerCustomer, {"customer": "a", "n": 1})
    second = durable.start(wf.OnePerCustomer, {"customer": "b", "n": 2})
    elsewhere = durable.start(wf.OnePerCustomer, {"customer": "c", "n": 3}, queue="other")

    assert first_run_at(second) - first_run_at(first) >= timedelta(milliseconds=500)
    assert first_run_at(elsewhere) < first_run_at(second)
    run_next()  # first.begin: its next step takes the queue's next slot, after second's
    next_step = Task.objects.get(execution__workflow_id=first)
    assert next_step.run_at >= first_run_at(second) + timedelta(milliseconds=500)


@override_settings(DURABLE={"QUEUES": QUEUES})
def test_a_workflow_and_a_queue_limit_both_apply() -> None:
    ids = [durable.start(wf.TenPerSecond, {}) for _ in range(3)]
    run_ats = [first_run_at(w) for w in ids]
    # The queue's 500ms spacing wins over the workflow's 100ms.
    assert run_ats[1] - run_ats[0] >= timedelta(milliseconds=500)
    assert run_ats[2] - run_ats[1] >= timedelta(milliseconds=500)


def test_a_held_execution_takes_its_rate_slot_when_admitted_not_when_created() -> None:
    first = durable.start(wf.OnePerMinute, {"customer": "a"})
    held = durable.start(wf.OnePerMinute, {"customer": "a"})
    other = durable.start(wf.OnePerMinute, {"customer": "b"})
    minute = timedelta(minutes=1)
    assert first_run_at(first) + minute <= first_run_at(other) < first_run_at(first) + 2 * minute

    durable.cancel(first)

    assert first_run_at(held) >= first_run_at(other) + minute
