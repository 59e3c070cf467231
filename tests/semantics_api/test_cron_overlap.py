"""Cron `overlap` policies and `scheduler.backfill`. Ticks are fired by calling
`scheduler.tick(now)` with the tick's own time (deterministic: no waiting for a clock);
the runs they start execute on a real worker process (its own scheduler off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import durable
from durable import Workflow, scheduler, step
from durable.dsl import registry
from durable.models import ScheduledRun, ScheduledWorkflow, WorkflowExecution
from durable.testing import run_until_idle
from tests.semantics_api.workflows import Adds, WaitsForGo
from tests.support.workers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

MODULES = "tests.semantics_api.workflows"
HOUR = timedelta(hours=1)


def status(workflow_id: str) -> str:
    return WorkflowExecution.objects.get(workflow_id=workflow_id).status


def wait_for_status(workflow_id: str, expected: str, workers) -> None:
    wait_until(
        lambda: status(workflow_id) == expected,
        timeout=60,
        message=lambda: (
            f"{workflow_id} is {status(workflow_id)}, not {expected}:\n" + workers.logs()
        ),
    )


def fire(name: str, at: datetime) -> list[str]:
    return [run.workflow_id for run in scheduler.tick(at) if run.schedule == name]


@pytest.mark.e2e
def test_overlap_policies_on_a_real_worker(workers):
    first_tick = {
        policy: scheduler.schedule(
            f"overlap-{policy}", WaitsForGo, "0 * * * *", overlap=policy
        ).next_run_at
        for policy in ("allow", "skip", "cancel_previous")
    }
    t0 = first_tick["allow"]
    assert set(first_tick.values()) == {t0}
    workers.start(1, workflow_modules=MODULES, extra_args=("--no-scheduler",))
    first = {run.schedule: run.workflow_id for run in scheduler.tick(t0)}
    assert len(first) == 3
    for workflow_id in first.values():
        wait_for_status(workflow_id, "waiting", workers)

    second = {run.schedule: run.workflow_id for run in scheduler.tick(t0 + HOUR)}
    # allow: a second run beside the first.
    assert status(first["overlap-allow"]) == "waiting"
    wait_for_status(second["overlap-allow"], "waiting", workers)
    # skip: the first is unfinished, so the tick started nothing (and is consumed).
    assert "overlap-skip" not in second
    assert status(first["overlap-skip"]) == "waiting"
    assert ScheduledWorkflow.objects.get(name="overlap-skip").next_run_at == t0 + 2 * HOUR
    # cancel_previous: the first was cancelled, the second runs.
    assert status(first["overlap-cancel_previous"]) == "cancelled"
    cancelled = WorkflowExecution.objects.get(workflow_id=first["overlap-cancel_previous"])
    assert "cancel_previous: schedule 'overlap-cancel_previous'" in str(cancelled.error)
    wait_for_status(second["overlap-cancel_previous"], "waiting", workers)

    # Once the skip schedule's run has finished, its next tick starts a run again.
    durable.send_event(first["overlap-skip"], "go", {"done": True})
    assert durable.get_result(first["overlap-skip"], timeout=60) == {"done": True}
    assert fire("overlap-skip", t0 + 2 * HOUR) != []
    counts = {
        name: ScheduledRun.objects.filter(schedule__name=name).count()
        for name in ("overlap-allow", "overlap-skip", "overlap-cancel_previous")
    }
    assert counts == {"overlap-allow": 3, "overlap-skip": 2, "overlap-cancel_previous": 3}


def test_a_bad_overlap_policy_is_refused():
    with pytest.raises(ValueError, match="overlap must be one of 'allow', 'skip'"):
        scheduler.schedule("bad", Adds, "0 * * * *", overlap="sometimes")
    assert not ScheduledWorkflow.objects.exists()


def test_cron_overlap_on_a_class_is_validated_and_registered():
    with pytest.raises(durable.DefinitionError, match="cron_overlap: overlap must be one of"):

        class BadOverlap(Workflow):
            cron = "0 * * * *"
            cron_overlap = "never"

            @step
            def only(self, ctx):
                pass

    with pytest.raises(durable.DefinitionError, match="cron_overlap is set but cron is not"):

        class OverlapWithoutCron(Workflow):
            cron_overlap = "skip"

            @step
            def only(self, ctx):
                pass

    class NightlyOnce(Workflow):
        cron = "0 3 * * *"
        cron_overlap = "skip"

        @step
        def only(self, ctx):
            pass

    try:
        scheduler.schedule_all_crons()
        assert ScheduledWorkflow.objects.get(name="nightly_once").overlap == "skip"
    finally:
        for name in ("bad_overlap", "overlap_without_cron", "nightly_once"):
            registry.unregister(name)


def hourly_adds() -> ScheduledWorkflow:
    return scheduler.schedule("hourly-adds", Adds, "0 * * * *", input={"a": 1, "b": 2})


def test_backfill_fires_each_missed_tick_once():
    hourly_adds()
    end = timezone.now().replace(minute=30, second=0, microsecond=0) - HOUR
    start = end - 4 * HOUR
    fired = scheduler.backfill("hourly-adds", start, end)
    expected = [start + timedelta(minutes=30) + n * HOUR for n in range(4)]
    assert [run.fire_time for run in fired] == expected
    assert all(run.caught_up for run in fired)
    assert len({run.workflow_id for run in fired}) == 4
    # Again, or over an overlapping period: the ticks that have a run fire nothing more.
    assert scheduler.backfill("hourly-adds", start, end) == []
    more = scheduler.backfill("hourly-adds", start - 2 * HOUR, end)
    assert [run.fire_time for run in more] == [expected[0] - 2 * HOUR, expected[0] - HOUR]
    assert ScheduledRun.objects.count() == WorkflowExecution.objects.count() == 6
    run_until_idle()
    assert {durable.get_result(run.workflow_id) for run in fired + more} == {3}


def test_backfill_includes_both_ends_and_leaves_a_tick_fired_on_time_alone():
    row = hourly_adds()
    tick = datetime(2026, 1, 5, 10, tzinfo=UTC)
    ScheduledWorkflow.objects.filter(pk=row.pk).update(next_run_at=tick)
    (on_time,) = scheduler.tick(tick)
    fired = scheduler.backfill("hourly-adds", tick - HOUR, tick + HOUR)
    assert [run.fire_time for run in fired] == [tick - HOUR, tick + HOUR]
    assert on_time.workflow_id not in {run.workflow_id for run in fired}


@pytest.mark.parametrize(
    ("start", "end", "error", "match"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), ValueError, "start must be"),
        ("2026-01-01", datetime(2026, 1, 2, tzinfo=UTC), TypeError, "start must be a datetime"),
        (
            datetime(2026, 1, 2, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            ValueError,
            "is after end",
        ),
        (
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2999, 1, 1, tzinfo=UTC),
            ValueError,
            "in the future",
        ),
        (
            datetime(2020, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            ValueError,
            "more than 10000 ticks",
        ),
    ],
)
def test_a_bad_backfill_raises_and_fires_nothing(start, end, error, match):
    hourly_adds()
    with pytest.raises(error, match=match):
        scheduler.backfill("hourly-adds", start, end)
    assert not ScheduledRun.objects.exists()
    assert not WorkflowExecution.objects.exists()


def test_backfill_of_an_unknown_schedule_raises_lookup_error():
    with pytest.raises(LookupError, match="no schedule named 'nope'"):
        scheduler.backfill("nope", datetime(2026, 1, 1, tzinfo=UTC), timezone.now())


@pytest.mark.e2e
def test_backfilled_runs_complete_on_a_real_worker(workers):
    hourly_adds()
    end = timezone.now() - HOUR
    fired = scheduler.backfill("hourly-adds", end - 3 * HOUR, end)
    assert len(fired) == 3
    workers.start(1, workflow_modules=MODULES, extra_args=("--no-scheduler",))
    assert [durable.get_result(run.workflow_id, timeout=60) for run in fired] == [3, 3, 3]
