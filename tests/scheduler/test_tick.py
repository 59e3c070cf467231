"""tick(): due ticks fire once, in one transaction with their run record; catch-up policies."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError

from durable.models import ScheduledRun, ScheduledWorkflow, WorkflowExecution
from durable.scheduler import runner as scheduler_runner
from durable.scheduler import schedule, tick
from tests.scheduler.workflows import SchedulerProbe

pytestmark = pytest.mark.django_db

T10 = datetime(2030, 1, 1, 10, tzinfo=UTC)


def hourly(name: str = "hourly", *, catch_up: str = "skip", at: datetime = T10):
    """An hourly UTC schedule whose next tick is `at`."""
    schedule(name, SchedulerProbe, "0 * * * *", input={"from": name}, catch_up=catch_up)
    ScheduledWorkflow.objects.filter(name=name).update(next_run_at=at)


def runs(name: str = "hourly") -> list[tuple[datetime, bool]]:
    return [
        (r.fire_time, r.caught_up)
        for r in ScheduledRun.objects.filter(schedule__name=name).order_by("fire_time")
    ]


def next_run(name: str = "hourly") -> datetime | None:
    return ScheduledWorkflow.objects.get(name=name).next_run_at


def test_a_due_tick_starts_the_workflow_and_records_the_run():
    hourly()
    (fired,) = tick(now=T10 + timedelta(seconds=3))
    assert (fired.schedule, fired.fire_time, fired.caught_up) == ("hourly", T10, False)
    execution = WorkflowExecution.objects.get(workflow_id=fired.workflow_id)
    assert execution.workflow_name == "scheduler_probe"
    assert execution.input == {"from": "hourly"}
    assert execution.idempotency_key == "cron:hourly:2030-01-01T10:00:00+00:00"
    run = ScheduledRun.objects.get()
    assert (run.fire_time, run.workflow_id) == (T10, fired.workflow_id)
    assert run.fired_by
    row = ScheduledWorkflow.objects.get(name="hourly")
    assert (row.last_run_at, row.next_run_at) == (T10, T10 + timedelta(hours=1))


def test_a_tick_fires_once_however_often_schedulers_look():
    hourly()
    now = T10 + timedelta(seconds=1)
    assert len(tick(now=now)) == 1
    assert tick(now=now) == []
    assert tick(now=now + timedelta(seconds=30)) == []
    assert WorkflowExecution.objects.count() == 1


def test_nothing_fires_before_the_tick_is_due():
    hourly()
    assert tick(now=T10 - timedelta(seconds=1)) == []
    assert next_run() == T10


def test_a_tick_already_recorded_is_not_fired_again_when_the_schedule_moves_back():
    hourly()
    tick(now=T10)
    # e.g. a worker's schedule_all_crons computed next_run_at from a clock a bit behind
    ScheduledWorkflow.objects.filter(name="hourly").update(next_run_at=T10)
    assert tick(now=T10 + timedelta(seconds=5)) == []
    assert next_run() == T10 + timedelta(hours=1)
    assert WorkflowExecution.objects.count() == 1


def test_start_and_run_record_commit_together(monkeypatch):
    hourly()

    def clash(*args, **kwargs):  # another scheduler inserted the run row first
        raise IntegrityError("unique (schedule, fire_time)")

    monkeypatch.setattr(ScheduledRun, "save", clash)
    assert tick(now=T10) == []
    assert WorkflowExecution.objects.count() == 0  # the start was rolled back with it
    assert next_run() == T10


def test_late_ticks_within_the_grace_period_all_fire_in_order():
    schedule("every10s", SchedulerProbe, "* * * * * */10")
    ScheduledWorkflow.objects.filter(name="every10s").update(next_run_at=T10)
    fired = tick(now=T10 + timedelta(seconds=35))
    assert [f.fire_time for f in fired] == [T10 + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert next_run("every10s") == T10 + timedelta(seconds=40)


def test_skip_drops_ticks_missed_while_no_scheduler_ran():
    hourly(catch_up="skip")
    assert tick(now=T10 + timedelta(hours=3, minutes=30)) == []  # 10:00 to 13:00 missed
    assert runs() == []
    assert next_run() == T10 + timedelta(hours=4)
    (fired,) = tick(now=T10 + timedelta(hours=4, seconds=2))
    assert fired.fire_time == T10 + timedelta(hours=4)


def test_skip_still_fires_the_tick_that_is_due_now():
    hourly(catch_up="skip")
    fired = tick(now=T10 + timedelta(hours=3, seconds=30))
    assert [(f.fire_time, f.caught_up) for f in fired] == [(T10 + timedelta(hours=3), False)]


def test_run_once_starts_one_run_for_the_whole_missed_period():
    hourly(catch_up="run_once")
    fired = tick(now=T10 + timedelta(hours=3, minutes=30))
    assert [(f.fire_time, f.caught_up) for f in fired] == [(T10, True)]
    assert runs() == [(T10, True)]
    assert next_run() == T10 + timedelta(hours=4)
    assert tick(now=T10 + timedelta(hours=3, minutes=31)) == []


def test_run_once_then_fires_the_tick_that_is_due_now():
    hourly(catch_up="run_once")
    tick(now=T10 + timedelta(hours=3, seconds=30))
    assert runs() == [(T10, True), (T10 + timedelta(hours=3), False)]


def test_the_grace_period_is_a_setting(settings):
    settings.DURABLE = {**settings.DURABLE, "SCHEDULER": {"GRACE_SECONDS": 5}}
    hourly(catch_up="skip")
    assert tick(now=T10 + timedelta(seconds=6)) == []
    assert next_run() == T10 + timedelta(hours=1)


def test_disabled_schedules_do_not_fire():
    hourly()
    ScheduledWorkflow.objects.filter(name="hourly").update(enabled=False)
    assert tick(now=T10 + timedelta(seconds=1)) == []


def test_an_enabled_schedule_without_a_next_tick_gets_one_and_does_not_fire():
    ScheduledWorkflow.objects.create(
        name="admin_made", workflow_name="scheduler_probe", cron_expression="0 * * * *"
    )
    assert tick(now=T10 + timedelta(minutes=30)) == []
    assert next_run("admin_made") == T10 + timedelta(hours=1)


def test_a_schedule_this_process_cannot_fire_is_left_due_and_others_still_fire(caplog):
    ScheduledWorkflow.objects.create(
        name="orphan",
        workflow_name="not_loaded_here",
        cron_expression="0 * * * *",
        next_run_at=T10,
    )
    ScheduledWorkflow.objects.create(
        name="broken", workflow_name="scheduler_probe", cron_expression="bad", next_run_at=T10
    )
    hourly()
    with caplog.at_level(logging.WARNING, logger="durable.scheduler"):
        fired = tick(now=T10 + timedelta(seconds=1))
    assert [f.schedule for f in fired] == ["hourly"]
    assert next_run("orphan") == T10
    assert "schedule 'orphan' cannot fire here: no workflow named 'not_loaded_here'" in caplog.text
    assert "schedule 'broken' cannot fire: invalid cron expression 'bad'" in caplog.text


def test_ticks_follow_the_schedule_zone_across_dst():
    schedule("ny", SchedulerProbe, "30 2 * * *", timezone="America/New_York")
    spring = datetime(2026, 3, 8, 7, tzinfo=UTC)  # 03:00 EDT: 02:30 does not exist that day
    ScheduledWorkflow.objects.filter(name="ny").update(next_run_at=spring)
    (fired,) = tick(now=spring)
    assert fired.fire_time == spring
    assert next_run("ny") == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT


def test_the_loop_sleeps_until_the_next_tick_but_no_longer_than_the_interval():
    hourly(at=datetime.now(UTC) + timedelta(seconds=2))
    assert 1 < scheduler_runner._delay(datetime.now(UTC), 5.0) <= 2
    assert scheduler_runner._delay(datetime.now(UTC), 0.5) == 0.5
