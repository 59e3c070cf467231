"""Retention: old finished executions go, in batches, with everything that hangs off them."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from durable.models import (
    BusPayload,
    PendingInput,
    StepExecution,
    Task,
    WorkflowEvent,
    WorkflowExecution,
)
from durable.store.retention import cleanup, cleanup_from_settings

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DEPENDENTS = (StepExecution, PendingInput, Task, WorkflowEvent)


def execution(status: str, finished_days_ago: float | None = None) -> WorkflowExecution:
    """An execution with one row of every dependent table; `finished_days_ago` sets
    completed_at (and created_at a day before it)."""
    completed_at = None if finished_days_ago is None else NOW - timedelta(days=finished_days_ago)
    row = WorkflowExecution.objects.create(
        workflow_module="tests.observability.workflows",
        workflow_name="obs_steps",
        status=status,
        completed_at=completed_at,
        context={"big": "x" * 1000},
    )
    created = (completed_at or NOW) - timedelta(days=1)
    WorkflowExecution.objects.filter(pk=row.pk).update(created_at=created)
    StepExecution.objects.create(execution=row, step="first", status="completed", logs=[{}])
    PendingInput.objects.create(execution=row, input_name="ok", step_name="first")
    Task.objects.create(execution=row, step="second", queue="default", run_at=NOW)
    WorkflowEvent.objects.create(execution=row, name="ping")
    return row


def remaining() -> set[int]:
    return set(WorkflowExecution.objects.values_list("pk", flat=True))


def dependents_of(pks: set[int]) -> dict[str, int]:
    return {
        model.__name__: model.objects.filter(execution_id__in=pks).count() for model in DEPENDENTS
    }


def deletes_of(queries: CaptureQueriesContext, table: str) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].startswith(f'DELETE FROM "{table}"'))


def test_only_finished_executions_past_their_window_are_deleted() -> None:
    gone = {
        execution("completed", 31).pk,
        execution("failed", 91).pk,
        execution("compensated", 100).pk,
        execution("compensation_failed", 95).pk,
        execution("cancelled", 91).pk,
    }
    kept = {
        execution("completed", 29).pk,
        execution("failed", 89).pk,
        execution("cancelled", 60).pk,
        execution("compensated", 31).pk,
    }
    # Unfinished executions stay whatever their age (even with a stray completed_at).
    live = {execution(status).pk for status in ("pending", "running", "waiting", "compensating")}
    live.add(execution("running", 400).pk)
    live.add(execution("waiting", 400).pk)

    counts = cleanup(30, 90, now=NOW)

    assert remaining() == kept | live
    assert counts == {
        "completed_executions": 1,
        "failed_executions": 4,
        "step_executions": 5,
        "pending_inputs": 5,
        "tasks": 5,
        "events": 5,
        "consumed_events": 0,
        "bus_payloads": 0,
        "worker_states": 0,
    }
    assert dependents_of(gone) == dict.fromkeys(["StepExecution", "PendingInput"], 0) | {
        "Task": 0,
        "WorkflowEvent": 0,
    }
    assert dependents_of(kept | live) == dict.fromkeys(
        ["StepExecution", "PendingInput", "Task", "WorkflowEvent"], len(kept | live)
    )


def test_rows_are_deleted_in_batches_of_batch_size() -> None:
    old = [execution("completed", 40) for _ in range(7)]
    execution("failed", 100)
    young = execution("completed", 1)

    with CaptureQueriesContext(connection) as queries:
        counts = cleanup(30, 90, batch_size=3, now=NOW)

    assert counts["completed_executions"] == 7
    assert counts["failed_executions"] == 1
    assert counts["step_executions"] == 8
    # 3 + 3 + 1 completed, then 1 failed: one DELETE per batch, dependents per batch too.
    assert deletes_of(queries, WorkflowExecution._meta.db_table) == 4
    assert deletes_of(queries, StepExecution._meta.db_table) == 4
    assert remaining() == {young.pk}
    assert not StepExecution.objects.filter(execution_id__in=[e.pk for e in old]).exists()


def test_a_dry_run_counts_what_would_go_and_deletes_nothing() -> None:
    for days in (31, 45, 10):
        execution("completed", days)
    execution("cancelled", 120)
    before = remaining()

    dry = cleanup(30, 90, batch_size=1, now=NOW, dry_run=True)

    assert remaining() == before
    assert sum(model.objects.count() for model in DEPENDENTS) == 4 * len(before)
    assert dry == cleanup(30, 90, batch_size=1, now=NOW)
    assert dry["completed_executions"] == 2
    assert dry["failed_executions"] == 1
    assert dry["tasks"] == 3


def test_a_window_of_none_keeps_that_kind_forever() -> None:
    completed = execution("completed", 1000).pk
    failed = execution("failed", 1000).pk

    assert cleanup(None, 90, now=NOW)["failed_executions"] == 1
    assert remaining() == {completed}
    assert cleanup(30, None, now=NOW)["completed_executions"] == 1
    assert remaining() == set()
    assert failed not in remaining()


def test_old_consumed_events_of_live_executions_go_and_the_rest_stay() -> None:
    live = execution("waiting")
    WorkflowEvent.objects.filter(execution=live).update(consumed_at=NOW - timedelta(days=40))
    recent = WorkflowEvent.objects.create(
        execution=live, name="recent", consumed_at=NOW - timedelta(days=1)
    )
    unconsumed = WorkflowEvent.objects.create(execution=live, name="open")

    counts = cleanup(30, 90, now=NOW)

    assert counts["consumed_events"] == 1
    assert set(WorkflowEvent.objects.values_list("pk", flat=True)) == {recent.pk, unconsumed.pk}
    assert remaining() == {live.pk}


def test_bus_payloads_older_than_a_day_go() -> None:
    old = BusPayload.objects.create(topic="t", payload={"n": 1})
    BusPayload.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(hours=25))
    fresh = BusPayload.objects.create(topic="t", payload={"n": 2})

    assert cleanup(30, 90, now=NOW)["bus_payloads"] == 1
    assert list(BusPayload.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"completed_days": -1, "failed_days": 90}, "completed_days must be"),
        ({"completed_days": 30, "failed_days": "90"}, "failed_days must be"),
        ({"completed_days": 30, "failed_days": 90, "batch_size": 0}, "batch_size must be"),
    ],
)
def test_cleanup_refuses_bad_windows_and_batch_sizes(args, message) -> None:
    execution("completed", 1000)
    with pytest.raises((ValueError, TypeError), match=message):
        cleanup(**args)
    assert WorkflowExecution.objects.count() == 1


def test_cleanup_from_settings_uses_the_retention_setting_and_its_defaults() -> None:
    execution("completed", 20)
    execution("failed", 60)
    execution("failed", 100)

    with override_settings(DURABLE={**settings.DURABLE, "RETENTION": {"FAILED_DAYS": 50}}):
        counts = cleanup_from_settings()
    # COMPLETED_DAYS keeps its default of 30.
    assert (counts["completed_executions"], counts["failed_executions"]) == (0, 2)
    with override_settings(DURABLE={**settings.DURABLE, "RETENTION": {"COMPLETED_DAYS": 10}}):
        assert cleanup_from_settings()["completed_executions"] == 1
    assert remaining() == set()


# -- durable_cleanup ----------------------------------------------------------------------


def cleanup_command(*args: str) -> str:
    out = StringIO()
    call_command("durable_cleanup", *args, stdout=out)
    return out.getvalue()


def test_the_command_deletes_with_the_configured_windows_and_prints_the_counts() -> None:
    execution("completed", 31)
    execution("completed", 20)
    execution("cancelled", 95)
    execution("running")

    output = cleanup_command()

    assert output.splitlines()[0] == (
        "deleted (completed: finished over 30 days ago; failed: finished over 90 days ago):"
    )
    assert "  completed executions  1\n" in output
    assert "  failed executions     1\n" in output
    assert "  step executions       2\n" in output
    assert WorkflowExecution.objects.count() == 2


def test_the_command_dry_run_prints_counts_and_deletes_nothing() -> None:
    execution("completed", 31)

    output = cleanup_command("--dry-run")

    assert output.startswith("would delete ")
    assert "  completed executions  1\n" in output
    assert WorkflowExecution.objects.count() == 1


def test_the_command_options_override_the_setting() -> None:
    execution("completed", 20)
    execution("failed", 20)
    execution("failed", 5)

    with override_settings(DURABLE={**settings.DURABLE, "RETENTION": {"COMPLETED_DAYS": None}}):
        output = cleanup_command("--failed-days", "10", "--batch-size", "1")
        assert "completed: kept forever; failed: finished over 10 days ago" in output
        assert WorkflowExecution.objects.count() == 2
        cleanup_command("--completed-days", "7")
    assert WorkflowExecution.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--completed-days", "-3"], "completed_days must be a number of days from 0"),
        (["--failed-days", "soon"], "invalid float value: 'soon'"),
    ],
)
def test_the_command_refuses_bad_options(args, message) -> None:
    execution("completed", 1000)
    with pytest.raises(CommandError, match=message):
        cleanup_command(*args)
    assert WorkflowExecution.objects.count() == 1


def test_rows_of_workers_not_seen_for_a_week_go() -> None:
    from durable.models import WorkerState
    from durable.store import workers

    workers.register("old:1:a", {"default": 1}, using="default")
    workers.register("recent:2:b", {"default": 1}, using="default")
    WorkerState.objects.filter(worker_id="old:1:a").update(seen_at=NOW - timedelta(days=8))
    WorkerState.objects.filter(worker_id="recent:2:b").update(seen_at=NOW - timedelta(days=6))

    assert cleanup(30, 90, now=NOW, dry_run=True)["worker_states"] == 1
    assert cleanup(30, 90, now=NOW)["worker_states"] == 1
    assert list(WorkerState.objects.values_list("worker_id", flat=True)) == ["recent:2:b"]
