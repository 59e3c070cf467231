"""Log capture of steps run inline, and the API that reads it back."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.test import override_settings

import durable
from durable.models import StepExecution
from durable.testing import run_workflow
from tests.observability import workflows as wf

pytestmark = pytest.mark.django_db


def attempts(wid: str) -> list[StepExecution]:
    return list(StepExecution.objects.filter(execution__workflow_id=wid).order_by("id"))


def capped(max_bytes: int) -> override_settings:
    return override_settings(DURABLE={**settings.DURABLE, "STEP_LOG_MAX_BYTES": max_bytes})


def test_prints_and_records_of_any_logger_are_stored_with_their_step_attempt() -> None:
    execution = run_workflow(wf.Steps, {})
    assert execution.status == "completed"

    first, second = attempts(execution.workflow_id)
    assert [(e["stream"], e["logger"], e["level"], e["message"]) for e in first.logs] == [
        ("stdout", "stdout", "INFO", f"first {i}") for i in range(3)
    ]
    assert [(e["stream"], e["logger"], e["level"], e["message"]) for e in second.logs] == [
        ("logging", "obs.second", "WARNING", f"second {i}") for i in range(3)
    ]


def test_records_of_every_logger_are_captured_even_those_that_do_not_propagate(
    caplog,
) -> None:
    # What a logger's level filters out is not captured: let INFO through for obs.lib.
    caplog.set_level(logging.INFO, logger="obs.lib")
    execution = run_workflow(wf.Loggers, {})

    (row,) = attempts(execution.workflow_id)
    assert [(e["logger"], e["level"], e["message"].splitlines()[0]) for e in row.logs] == [
        ("obs.lib", "WARNING", "plain warning"),
        ("obs.isolated", "ERROR", "not propagated"),
        ("obs.lib", "INFO", "an info"),
        ("obs.lib", "ERROR", "caught it"),
    ]
    assert {e["stream"] for e in row.logs} == {"logging"}
    assert "ZeroDivisionError: division by zero" in row.logs[3]["message"]


def test_get_step_logs_returns_one_steps_lines_named_by_step_and_attempt() -> None:
    wid = run_workflow(wf.FailsOnce, {}).workflow_id

    entries = durable.get_step_logs(wid, step="flaky")

    assert [(e["step"], e["attempt"], e["message"]) for e in entries][:1] == [
        ("flaky", 1, "attempt 1 starting")
    ]
    assert [e["message"] for e in entries if e["attempt"] == 2] == [
        "attempt 2 starting",
        "attempt 2 done",
    ]
    assert "ValueError: boom on attempt 1" in entries[1]["message"]
    assert entries == durable.get_execution_logs(wid)
    assert entries == list(durable.stream_logs(wid))


def test_get_step_logs_of_only_one_step_leaves_out_the_others() -> None:
    wid = run_workflow(wf.Steps, {}).workflow_id

    assert {e["step"] for e in durable.get_step_logs(wid, step="first")} == {"first"}
    assert {e["step"] for e in durable.get_step_logs(wid, step="second")} == {"second"}
    assert [e["step"] for e in durable.get_execution_logs(wid)] == ["first"] * 3 + ["second"] * 3


def test_log_lookups_refuse_unknown_ids_and_steps() -> None:
    wid = run_workflow(wf.Steps, {}).workflow_id
    with pytest.raises(ValueError, match="has no step 'nope'"):
        durable.get_step_logs(wid, step="nope")
    with pytest.raises(durable.ExecutionNotFound):
        durable.get_step_logs("no-such-id")
    with pytest.raises(durable.ExecutionNotFound):
        durable.get_execution_logs("no-such-id")
    with pytest.raises(durable.ExecutionNotFound):
        list(durable.stream_logs("no-such-id"))


def test_output_over_the_size_cap_is_cut_with_a_marked_entry_not_silently() -> None:
    with capped(200):
        execution = run_workflow(wf.Noisy, {"lines": 50, "width": 20})
    assert execution.status == "completed"

    (row,) = attempts(execution.workflow_id)
    *kept, marker = row.logs
    # Each line is 25 characters: 8 fit in 200.
    assert [e["message"][:4] for e in kept] == [f"{i:04d}" for i in range(8)]
    assert all("truncated" not in e for e in kept)
    assert marker["truncated"] is True
    assert marker["level"] == "WARNING"
    assert "42 more line(s)" in marker["message"]
    assert "STEP_LOG_MAX_BYTES" in marker["message"]


def test_the_traceback_of_a_failure_is_kept_when_the_output_filled_the_log() -> None:
    with capped(200):
        execution = run_workflow(wf.Noisy, {"lines": 50, "width": 20, "fail": True})
    assert execution.status == "failed"

    (row,) = attempts(execution.workflow_id)
    assert len(row.logs) == 8 + 2
    failure = next(e for e in row.logs if e["level"] == "ERROR")
    assert "Traceback (most recent call last)" in failure["message"]
    assert "RuntimeError: too loud" in failure["message"]
    assert row.logs[-1]["truncated"] is True


def test_output_under_the_cap_is_not_marked() -> None:
    with capped(10_000):
        execution = run_workflow(wf.Noisy, {"lines": 5, "width": 20})
    (row,) = attempts(execution.workflow_id)
    assert len(row.logs) == 5
    assert not any(e.get("truncated") for e in row.logs)
