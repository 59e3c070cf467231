"""Managing schedules: class attributes, schedule()/unschedule(), schedule_all_crons(), E010."""

from __future__ import annotations

import types
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from durable import DefinitionError, Workflow, WorkflowNotFound, step
from durable.dsl import registry
from durable.models import ScheduledWorkflow
from durable.scheduler import schedule, schedule_all_crons, unschedule
from tests.scheduler.workflows import SchedulerProbe

pytestmark = pytest.mark.django_db


@pytest.fixture
def class_names():
    """Names of workflow classes a test defines; unregistered afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        registry.unregister(name)


def define(name: str, **attributes) -> type[Workflow]:
    """A one-step workflow class named `name` with the given class attributes."""

    def body(namespace: dict) -> None:
        def run(self, ctx):
            ctx.put("ran", True)

        namespace.update(name=name, run=step(run), **attributes)

    return types.new_class(name.title().replace("_", ""), (Workflow,), exec_body=body)


def e010(**kwargs) -> list[str]:
    # With databases, every check (as `check --database`): the stored schedules' check is
    # tagged `database` only, so that no tag but Django's own brings it to the database.
    tags = None if "databases" in kwargs else ["durable"]
    return [m.msg for m in run_checks(tags=tags, **kwargs) if m.id == "durable.E010"]


# --- class attributes


def test_class_attributes_register_a_schedule_named_after_the_workflow(class_names):
    class_names.append("sched_daily_report")
    define(
        "sched_daily_report",
        cron="0 9 * * *",
        cron_queue="payments",
        cron_input={"type": "daily"},
        cron_timezone="America/New_York",
    )
    result = schedule_all_crons()
    assert result.created == ["sched_daily_report"]
    row = ScheduledWorkflow.objects.get(name="sched_daily_report")
    assert (row.workflow_name, row.cron_expression, row.timezone) == (
        "sched_daily_report",
        "0 9 * * *",
        "America/New_York",
    )
    assert (row.queue, row.input, row.source, row.enabled, row.catch_up) == (
        "payments",
        {"type": "daily"},
        "code",
        True,
        "skip",
    )
    assert row.next_run_at > timezone.now()
    assert row.next_run_at.astimezone(ZoneInfo("America/New_York")).hour == 9
    assert schedule_all_crons().created == []  # idempotent
    assert ScheduledWorkflow.objects.count() == 1


def test_defaults_are_the_workflow_queue_and_the_scheduler_timezone(class_names, settings):
    class_names.append("sched_defaults")
    define("sched_defaults", cron="*/5 * * * *", queue="high_priority")
    settings.DURABLE = {**settings.DURABLE, "SCHEDULER": {"TIMEZONE": "Europe/London"}}
    schedule_all_crons()
    row = ScheduledWorkflow.objects.get(name="sched_defaults")
    assert (row.queue, row.timezone, row.input) == ("high_priority", "Europe/London", {})


def test_a_changed_class_updates_its_schedule(class_names):
    class_names.append("sched_changing")
    define("sched_changing", cron="0 9 * * *", cron_input={"v": 1})
    schedule_all_crons()
    before = ScheduledWorkflow.objects.get(name="sched_changing")
    registry.unregister("sched_changing")
    define("sched_changing", cron="30 10 * * *", cron_input={"v": 2}, cron_catch_up="run_once")
    result = schedule_all_crons()
    assert result.updated == ["sched_changing"]
    row = ScheduledWorkflow.objects.get(name="sched_changing")
    assert (row.pk, row.cron_expression, row.input, row.catch_up) == (
        before.pk,
        "30 10 * * *",
        {"v": 2},
        "run_once",
    )
    assert (row.next_run_at.hour, row.next_run_at.minute) == (10, 30)


def test_a_schedule_removed_from_code_is_disabled_not_deleted_and_comes_back(class_names):
    class_names.append("sched_removed")
    define("sched_removed", cron="* * * * *")
    schedule_all_crons()
    registry.unregister("sched_removed")
    assert schedule_all_crons().disabled == ["sched_removed"]
    row = ScheduledWorkflow.objects.get(name="sched_removed")
    assert (row.enabled, row.next_run_at) == (False, None)
    assert row.removed_from_code_at is not None
    assert schedule_all_crons().disabled == []  # once
    define("sched_removed", cron="* * * * *")
    assert schedule_all_crons().updated == ["sched_removed"]
    row.refresh_from_db()
    assert row.enabled
    assert row.removed_from_code_at is None
    assert row.next_run_at > timezone.now()


def test_a_code_schedule_disabled_by_hand_stays_disabled(class_names):
    class_names.append("sched_paused")
    define("sched_paused", cron="* * * * *")
    schedule_all_crons()
    ScheduledWorkflow.objects.filter(name="sched_paused").update(enabled=False)
    schedule_all_crons()
    assert not ScheduledWorkflow.objects.get(name="sched_paused").enabled


def test_manual_schedules_are_not_touched_by_the_sync(class_names):
    schedule("sched_clash", SchedulerProbe, "0 3 * * *")
    class_names.append("sched_clash")
    define("sched_clash", cron="0 4 * * *")
    result = schedule_all_crons()
    assert result.conflicts == ["sched_clash"]
    row = ScheduledWorkflow.objects.get(name="sched_clash")
    assert (row.source, row.cron_expression, row.enabled) == ("manual", "0 3 * * *", True)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"cron": "61 * * * *"}, "cron: invalid cron expression '61 \\* \\* \\* \\*'"),
        ({"cron": "0 9 * * *", "cron_timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"cron": "0 9 * * *", "cron_catch_up": "all"}, "catch_up must be one of"),
        ({"cron": "0 9 * * *", "cron_input": {"x": {1, 2}}}, "cron_input"),
        ({"cron": "0 9 * * *", "cron_input": [1]}, "cron_input must be a dict"),
        ({"cron": "0 9 * * *", "cron_queue": ""}, "cron_queue must be a non-empty string"),
        ({"cron_timezone": "UTC"}, "cron_timezone is set but cron is not"),
    ],
)
def test_invalid_class_schedules_raise_definition_error_naming_the_workflow(attributes, message):
    with pytest.raises(DefinitionError, match=message) as info:
        define("sched_invalid", **attributes)
    assert info.value.workflow == "sched_invalid"
    with pytest.raises(WorkflowNotFound):
        registry.get("sched_invalid")


# --- schedule() / unschedule()


def test_schedule_creates_and_replaces_a_manual_schedule():
    row = schedule(
        "nightly",
        SchedulerProbe,
        "0 2 * * *",
        input={"n": 1},
        timezone="Australia/Lord_Howe",
        catch_up="run_once",
    )
    assert (row.source, row.workflow_name, row.queue, row.catch_up) == (
        "manual",
        "scheduler_probe",
        "default",
        "run_once",
    )
    assert row.next_run_at > timezone.now()
    again = schedule("nightly", "scheduler_probe", "0 3 * * *", queue="payments", enabled=False)
    assert again.pk == row.pk
    assert (again.cron_expression, again.queue, again.enabled, again.next_run_at) == (
        "0 3 * * *",
        "payments",
        False,
        None,
    )
    assert ScheduledWorkflow.objects.count() == 1


def test_re_enabling_starts_from_now_without_catching_up():
    schedule("toggle", SchedulerProbe, "* * * * *", enabled=False)
    row = schedule("toggle", SchedulerProbe, "* * * * *", catch_up="run_once")
    assert row.enabled
    assert timezone.now() < row.next_run_at <= timezone.now() + timedelta(minutes=1)


def test_unschedule_deletes_and_unknown_names_raise():
    schedule("gone", SchedulerProbe, "* * * * *")
    unschedule("gone")
    assert not ScheduledWorkflow.objects.filter(name="gone").exists()
    with pytest.raises(LookupError, match="no schedule named 'gone'"):
        unschedule("gone")


def test_schedule_refuses_to_take_over_a_code_schedule(class_names):
    class_names.append("sched_owned")
    define("sched_owned", cron="0 9 * * *")
    schedule_all_crons()
    with pytest.raises(ValueError, match="comes from the cron attribute"):
        schedule("sched_owned", SchedulerProbe, "0 1 * * *")
    assert ScheduledWorkflow.objects.get(name="sched_owned").cron_expression == "0 9 * * *"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cron": "0 25 * * *"}, ValueError, "invalid cron expression"),
        ({"cron": "0 9 * *"}, ValueError, "expected 5 fields"),
        ({"timezone": "Europe/Atlantis"}, ValueError, "unknown time zone"),
        ({"workflow": "no_such_workflow"}, WorkflowNotFound, "no workflow named"),
        ({"workflow": object}, TypeError, "expected a Workflow subclass"),
        ({"input": {"when": float("nan")}}, ValueError, "NaN"),
        ({"input": {"blob": b"x"}}, TypeError, "input"),
        ({"input": ["not", "a", "dict"]}, TypeError, "must be a dict"),
        ({"queue": "nope"}, ValueError, "not configured"),
        ({"catch_up": "always"}, ValueError, "catch_up must be one of"),
        ({"name": ""}, ValueError, "schedule name"),
        ({"enabled": "yes"}, TypeError, "enabled must be a bool"),
    ],
)
def test_invalid_schedules_are_rejected_and_nothing_is_written(kwargs, error, message):
    arguments = {"name": "bad", "workflow": SchedulerProbe, "cron": "0 9 * * *", **kwargs}
    with pytest.raises(error, match=message):
        schedule(
            arguments.pop("name"), arguments.pop("workflow"), arguments.pop("cron"), **arguments
        )
    assert ScheduledWorkflow.objects.count() == 0


# --- durable.E010


def test_the_test_project_has_no_schedule_problems():
    assert e010() == []
    assert e010(databases=["default"]) == []


def test_invalid_stored_schedules_are_e010_with_check_database():
    ScheduledWorkflow.objects.create(
        name="broken", workflow_name="scheduler_probe", cron_expression="0 99 * * *"
    )
    ScheduledWorkflow.objects.create(
        name="zoneless",
        workflow_name="scheduler_probe",
        cron_expression="* * * * *",
        timezone="Nowhere/Else",
    )
    ScheduledWorkflow.objects.create(
        name="orphan",
        workflow_name="deleted_workflow",
        cron_expression="* * * * *",
        queue="missing",
    )
    ScheduledWorkflow.objects.create(
        name="orphan_disabled",
        workflow_name="deleted_workflow",
        cron_expression="* * * * *",
        enabled=False,
    )
    assert e010() == []  # stored rows are checked with `check --database default`
    messages = e010(databases=["default"])
    assert len(messages) == 4, messages
    assert "schedule 'broken': invalid cron expression '0 99 * * *'" in messages[0]
    assert "workflow 'deleted_workflow' is not registered" in messages[1]
    assert "queue 'missing' is not in DURABLE['QUEUES']" in messages[2]
    assert "schedule 'zoneless': unknown time zone 'Nowhere/Else'" in messages[3]


def test_unconfigured_cron_queue_and_bad_options_are_e010(class_names, settings):
    class_names.append("sched_lost_queue")
    define("sched_lost_queue", cron="0 9 * * *", cron_queue="reports")
    settings.DURABLE = {
        **settings.DURABLE,
        "SCHEDULER": {"TIMEZONE": "Moon/Base", "INTERVAL": 0, "GRACE_SECONDS": -1},
    }
    messages = "\n".join(e010())
    assert "cron_queue 'reports' is not in DURABLE['QUEUES']" in messages
    assert "DURABLE['SCHEDULER']['TIMEZONE']: unknown time zone 'Moon/Base'" in messages
    assert "['INTERVAL'] must be a positive number" in messages
    assert "['GRACE_SECONDS'] must be a non-negative number" in messages


def test_fire_times_are_stored_in_utc():
    row = schedule("utc", SchedulerProbe, "0 9 * * *", timezone="Asia/Kolkata")
    stored = ScheduledWorkflow.objects.get(pk=row.pk).next_run_at
    assert stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.minute) == (3, 30)
