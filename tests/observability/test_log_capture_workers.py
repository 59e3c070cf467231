"""Per-step log capture in a real worker process, with eight steps writing at the same time."""

from __future__ import annotations

import pytest

import durable
from durable.models import StepExecution
from durable.testing import assert_workflow_completed
from tests.observability import workflows as wf

pytestmark = pytest.mark.e2e

MODULES = "tests.observability.workflows"


def attempts(wid: str, step: str) -> list[StepExecution]:
    return list(StepExecution.objects.filter(execution__workflow_id=wid, step=step).order_by("id"))


def item_of(row: StepExecution) -> int:
    """The foreach item of an attempt, from its scope key (`chatter[3]`)."""
    return int(row.scope_key.removeprefix("chatter[").removesuffix("]"))


def assert_only_own_lines(row: StepExecution, item: int) -> None:
    """The attempt's entries are exactly its own lines, per stream, in order."""
    expected = wf.expected_lines(item, row.attempt)
    by_stream = {
        stream: [e["message"] for e in row.logs if e["stream"] == stream] for stream in expected
    }
    assert by_stream == expected, f"item {item}: {row.logs}"
    assert {e["stream"] for e in row.logs} == set(expected)
    for entry in row.logs:
        assert set(entry) >= {"timestamp", "level", "message", "logger", "stream"}
        if entry["stream"] == "stdout":
            assert (entry["level"], entry["logger"]) == ("INFO", "stdout")
        elif entry["stream"] == "stderr":
            assert (entry["level"], entry["logger"]) == ("ERROR", "stderr")
        else:
            line = int(entry["message"].rsplit(" ", 1)[1])
            assert entry["logger"] == f"obs.item{item}"
            assert entry["level"] == ("WARNING" if line % 2 else "INFO")
    stamps = [e["timestamp"] for e in row.logs]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("workflow", [wf.SyncChatter, wf.AsyncChatter], ids=["threads", "asyncio"])
def test_eight_concurrent_steps_in_one_worker_each_capture_exactly_their_own_lines(
    workers, tmp_path, workflow
) -> None:
    (worker,) = workers.start(1, concurrency=wf.ITEMS, workflow_modules=MODULES)
    wid = durable.start(workflow, {"barrier": str(tmp_path)})
    assert_workflow_completed(wid, timeout=90)

    rows = attempts(wid, "talk")
    assert len(rows) == wf.ITEMS
    # Every step waited at the barrier until all eight had started: they truly overlapped.
    assert all(row.output is True for row in rows), [row.output for row in rows]
    assert sorted(item_of(row) for row in rows) == list(range(wf.ITEMS))
    for row in rows:
        assert_only_own_lines(row, item_of(row))
    # ... and their writing interleaved: each started before any other finished.
    first_lines = [row.logs[0]["timestamp"] for row in rows]
    last_lines = [row.logs[-1]["timestamp"] for row in rows]
    assert max(first_lines) < min(last_lines)

    # The worker's console still shows what the steps printed, to stdout and stderr.
    console = worker.output()
    for item in range(wf.ITEMS):
        lines = wf.expected_lines(item, 1)
        assert lines["stdout"][-1] in console
        assert lines["stderr"][0] in console


def test_a_failed_attempt_keeps_its_output_and_traceback_and_the_retry_has_its_own(
    workers,
) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.FailsOnce, {})
    assert_workflow_completed(wid, timeout=60)

    failed, passed = attempts(wid, "flaky")
    assert (failed.attempt, failed.status, passed.attempt, passed.status) == (
        1,
        "failed",
        2,
        "completed",
    )
    assert failed.logs[0]["message"] == "attempt 1 starting"
    traceback = failed.logs[-1]
    assert traceback["level"] == "ERROR"
    assert "Traceback (most recent call last)" in traceback["message"]
    assert "ValueError: boom on attempt 1" in traceback["message"]
    assert [e["message"] for e in passed.logs] == ["attempt 2 starting", "attempt 2 done"]


def test_stream_logs_follows_a_running_workflow_until_it_ends(workers) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.Steps, {"pause": 0.2})

    entries = list(durable.stream_logs(wid, poll_interval=0.05))

    assert durable.get_execution(wid).status == "completed"
    assert [(e["step"], e["message"]) for e in entries] == [
        ("first", "first 0"),
        ("first", "first 1"),
        ("first", "first 2"),
        ("second", "second 0"),
        ("second", "second 1"),
        ("second", "second 2"),
    ]
    assert {e["logger"] for e in entries if e["step"] == "second"} == {"obs.second"}
    assert entries == durable.get_execution_logs(wid)
