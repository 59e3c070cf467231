"""The log flusher's writes (durable.engine.livelogs): only new lines, only to a row still
running under our lease, and never an error for the step."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable
from durable.engine.livelogs import LogFlusher, _Live
from durable.engine.logcapture import StepLog
from durable.models import StepExecution, Task, WorkflowExecution
from durable.store.records import ClaimedTask
from tests.integration.support import claim_one
from tests.observability import workflows as wf
from tests.support.workers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def running_attempt() -> tuple[ClaimedTask, StepLog, _Live]:
    durable.start(wf.Steps, {})
    claim = claim_one()
    assert claim is not None
    log = StepLog(10_000)
    return claim, log, _Live(log, claim, "default")


def row_logs(claim: ClaimedTask) -> list[str]:
    row = StepExecution.objects.get(execution_id=claim.execution_pk, step=claim.step)
    return [e["message"] for e in row.logs]


def add(log: StepLog, message: str) -> None:
    log.add(level="INFO", message=message, logger="t", stream="logging")


def test_flush_writes_new_lines_only_and_costs_nothing_without_them() -> None:
    claim, log, live = running_attempt()
    flusher = LogFlusher()
    with CaptureQueriesContext(connection) as nothing_yet:
        flusher.flush(live)
    assert len(nothing_yet) == 0

    add(log, "one")
    flusher.flush(live)
    assert row_logs(claim) == ["one"]
    with CaptureQueriesContext(connection) as unchanged:
        flusher.flush(live)
    assert len(unchanged) == 0
    add(log, "two")
    flusher.flush(live)
    assert row_logs(claim) == ["one", "two"]
    # A first run (not resumed after a wait): the checkpoint writes the whole list.
    assert log.finish() == log.entries
    assert len(log.entries) == 2


def test_no_write_once_the_lease_is_lost() -> None:
    claim, log, live = running_attempt()
    Task.objects.filter(id=claim.task_id).update(lease_token=uuid.uuid4())
    add(log, "late")
    LogFlusher().flush(live)
    assert row_logs(claim) == []
    assert live.stopped


def test_no_write_once_the_attempt_stopped_running() -> None:
    claim, log, live = running_attempt()
    StepExecution.objects.filter(execution_id=claim.execution_pk).update(status="completed")
    add(log, "late")
    LogFlusher().flush(live)
    assert row_logs(claim) == []
    assert live.stopped


def test_lines_are_not_written_after_the_step_stopped_being_followed() -> None:
    claim, log, _ = running_attempt()
    flusher = LogFlusher()
    with flusher.following(log, claim, "default"):
        (live,) = flusher._live
        add(log, "inside")
        flusher.flush(live)
    assert flusher._live == set()
    add(log, "after")  # the checkpoint writes this one, not the flusher
    flusher.flush(live)
    assert row_logs(claim) == ["inside"]


def test_a_line_the_database_refuses_is_logged_and_dropped(caplog) -> None:
    claim, log, live = running_attempt()
    add(log, "fine")
    log.entries.append({"message": object()})  # not JSON: the write fails
    with caplog.at_level(logging.WARNING, logger="durable.worker"):
        LogFlusher().flush(live)
    assert "could not store the log lines of step 'first'" in caplog.text
    assert row_logs(claim) == []
    assert not live.stopped
    assert live.flushed == 0
    # Lines that can be stored go in on a later pass.
    log.entries.pop()
    LogFlusher().flush(live)
    assert row_logs(claim) == ["fine"]


def test_stream_logs_follows_a_row_whose_lines_grow_and_starts_over_when_replaced() -> None:
    claim, log, live = running_attempt()
    flusher = LogFlusher()
    stream = durable.stream_logs(claim.workflow_id, poll_interval=0.01)
    add(log, "a")
    flusher.flush(live)
    assert next(stream)["message"] == "a"
    add(log, "b")
    flusher.flush(live)
    assert next(stream)["message"] == "b"
    # A worker retaking the attempt after this one died starts its log over.
    retaken = StepLog(10_000)
    add(retaken, "c")
    flusher.flush(_Live(retaken, claim, "default"))
    assert next(stream)["message"] == "c"
    add(retaken, "d")
    flusher.flush(_Live(retaken, claim, "default"))
    WorkflowExecution.objects.filter(pk=claim.execution_pk).update(status="cancelled")
    assert [e["message"] for e in stream] == ["d"]


def test_the_flusher_thread_stores_a_followed_steps_lines() -> None:
    claim, log, _ = running_attempt()
    flusher = LogFlusher()
    with flusher.following(log, claim, "default"):
        add(log, "from the step")
        wait_until(
            lambda: row_logs(claim) == ["from the step"],
            timeout=30,
            message=lambda: f"never stored: {row_logs(claim)}",
        )
