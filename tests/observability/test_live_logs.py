"""A running step's log lines are stored while it runs (durable.engine.livelogs), in a
real worker process: visible to `get_step_logs` and `stream_logs` before the step ends,
each line exactly once and in order after it, concurrent steps' lines apart."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable.models import StepExecution
from durable.testing import assert_workflow_completed
from tests.observability import workflows as wf
from tests.support.workers import wait_until

pytestmark = pytest.mark.e2e

MODULES = "tests.observability.workflows"
TIMEOUT = 60


def open_gate(folder: Path, name: str) -> None:
    (folder / name).touch()


def messages(wid: str, step: str) -> list[str]:
    return [e["message"] for e in durable.get_step_logs(wid, step)]


def running(wid: str, step: str) -> bool:
    return StepExecution.objects.filter(
        execution__workflow_id=wid, step=step, status="running"
    ).exists()


def test_a_running_steps_lines_are_visible_before_it_ends_and_once_after(workers, tmp_path) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.LiveLines, {"gates": str(tmp_path)})

    wait_until(
        lambda: messages(wid, "slow") == ["line 1"],
        timeout=TIMEOUT,
        message=lambda: f"line 1 never showed: {messages(wid, 'slow')}\n{workers.logs()}",
    )
    # The step is held at its first gate, so it is still running.
    assert running(wid, "slow")
    open_gate(tmp_path, "one")
    wait_until(
        lambda: messages(wid, "slow") == ["line 1", "line 2"],
        timeout=TIMEOUT,
        message=lambda: f"line 2 never showed: {messages(wid, 'slow')}",
    )
    assert running(wid, "slow")
    open_gate(tmp_path, "two")
    assert_workflow_completed(wid, timeout=TIMEOUT)

    (row,) = StepExecution.objects.filter(execution__workflow_id=wid, step="slow")
    assert row.output is True
    assert [e["message"] for e in row.logs] == ["line 1", "line 2", "line 3"]
    assert [e["stream"] for e in row.logs] == ["logging", "stdout", "logging"]


def test_stream_logs_yields_a_running_steps_lines_as_they_come(workers, tmp_path) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.LiveLines, {"gates": str(tmp_path)})
    stream = durable.stream_logs(wid, poll_interval=0.05)

    first = next(stream)
    assert (first["step"], first["message"]) == ("slow", "line 1")
    assert running(wid, "slow")  # held at its first gate
    open_gate(tmp_path, "one")
    second = next(stream)
    assert second["message"] == "line 2"
    assert running(wid, "slow")
    open_gate(tmp_path, "two")
    rest = list(stream)

    assert durable.get_execution(wid).status == "completed"
    assert [e["message"] for e in [first, second, *rest]] == ["line 1", "line 2", "line 3"]
    assert [first, second, *rest] == durable.get_execution_logs(wid)


def test_concurrent_running_steps_in_one_worker_keep_their_lines_apart(workers, tmp_path) -> None:
    workers.start(1, concurrency=wf.LIVE_ITEMS, workflow_modules=MODULES)
    wid = durable.start(wf.LiveChatter, {"gates": str(tmp_path)})

    def rows() -> list[StepExecution]:
        return list(StepExecution.objects.filter(execution__workflow_id=wid, step="talk"))

    def lines() -> dict[str, list[str]]:
        return {row.scope_key: [e["message"] for e in row.logs] for row in rows()}

    expected_first = {f"chatter[{i}]": [f"item {i} line 1"] for i in range(wf.LIVE_ITEMS)}
    wait_until(
        lambda: lines() == expected_first,
        timeout=TIMEOUT,
        message=lambda: f"first lines: {lines()}\n{workers.logs()}",
    )
    assert all(row.status == "running" for row in rows())  # all held at the gate
    open_gate(tmp_path, "go")
    assert_workflow_completed(wid, timeout=TIMEOUT)

    assert lines() == {
        f"chatter[{i}]": [f"item {i} line 1", f"item {i} line 2"] for i in range(wf.LIVE_ITEMS)
    }
    assert all(row.output is True for row in rows())


def test_a_resumed_run_appends_its_live_lines_once(workers, tmp_path) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.LiveAfterWait, {"gates": str(tmp_path)})
    wait_until(
        lambda: durable.get_execution(wid).status == "waiting",
        timeout=TIMEOUT,
        message=lambda: workers.logs(),
    )
    assert messages(wid, "resume") == ["before the event"]

    durable.send_event(wid, "go")
    # The first run's line, then the resumed run's (it runs the step again from its start).
    so_far = ["before the event", "before the event", "after the event"]
    wait_until(
        lambda: messages(wid, "resume") == so_far,
        timeout=TIMEOUT,
        message=lambda: f"resumed lines: {messages(wid, 'resume')}\n{workers.logs()}",
    )
    assert running(wid, "resume")  # held at its gate
    open_gate(tmp_path, "end")
    assert_workflow_completed(wid, timeout=TIMEOUT)

    assert messages(wid, "resume") == [*so_far, "the end"]
