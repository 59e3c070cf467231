"""Timeouts and cooperative cancellation on real worker processes: a step past its timeout
sees `ctx.cancelled`, its next attempt never runs beside it in the same worker, and a
thread that ignores it keeps its slot until it ends."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable.engine.worker import TIMEOUT_GRACE
from durable.models import WorkflowExecution
from durable.testing import assert_workflow_completed
from tests.semantics.workflows import CooperativeTimeout, Quick, StubbornTimeout, UntilCancelled
from tests.support.workers import WorkerPool, wait_until

pytestmark = pytest.mark.e2e

MODULES = "tests.semantics.workflows"


def entries(path: Path) -> list[tuple[str, str, int, float]]:
    """The journal's lines: (event, workflow id, attempt, time)."""
    lines = path.read_text().split() if path.exists() else []
    return [
        (lines[i], lines[i + 1], int(lines[i + 2]), float(lines[i + 3]))
        for i in range(0, len(lines), 4)
    ]


def at(path: Path, event: str, attempt: int = 1, wid: str | None = None) -> float:
    (when,) = [t for e, w, a, t in entries(path) if (e, a) == (event, attempt) and wid in (None, w)]
    return when


def test_step_checking_ctx_cancelled_stops_within_a_second_and_its_retry_follows(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    workers.start(1, concurrency=4, workflow_modules=MODULES)
    wid = durable.start(CooperativeTimeout, {"journal": str(journal)})

    execution = assert_workflow_completed(wid, timeout=60)

    started, stopped = at(journal, "start"), at(journal, "stopped")
    assert 1.0 <= stopped - started < 2.0, entries(journal)  # timeout=1, stopped within 1 s
    assert at(journal, "start", attempt=2) >= stopped
    assert [(e, a) for e, _, a, _ in entries(journal)] == [
        ("start", 1),
        ("stopped", 1),
        ("start", 2),
        ("end", 2),
    ]
    assert execution.result == 2
    first, second = execution.steps.order_by("attempt")
    assert (first.status, first.error["type"]) == ("failed", "durable.exceptions.StepTimeout")
    assert second.status == "completed"


def test_step_ignoring_its_timeout_is_abandoned_and_its_retry_waits_for_its_thread(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    (worker,) = workers.start(1, concurrency=4, workflow_modules=MODULES)
    seconds = 1 + TIMEOUT_GRACE + 2
    wid = durable.start(StubbornTimeout, {"journal": str(journal), "seconds": seconds})

    execution = assert_workflow_completed(wid, timeout=60)
    wait_until(
        lambda: ("end", 1) in [(e, a) for e, _, a, _ in entries(journal)],
        timeout=30,
        message=lambda: f"attempt 1 never ended\n{workers.logs()}",
    )

    # Its timeout was recorded after the grace, while its thread ran on; the retry was
    # claimed by the same worker then, and started only once the thread had ended.
    assert at(journal, "start", attempt=2) >= at(journal, "end", attempt=1)
    assert "waits until attempt 1, past its timeout, stops" in worker.output()
    assert "is abandoned" in worker.output()
    first, second = execution.steps.order_by("attempt")
    assert first.error["type"] == "durable.exceptions.StepTimeout"
    assert second.status == "completed"


def test_abandoned_thread_keeps_its_slot_until_it_ends(workers: WorkerPool, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    workers.start(1, concurrency=1, workflow_modules=MODULES)
    seconds = 1 + TIMEOUT_GRACE + 2
    stubborn = durable.start(StubbornTimeout, {"journal": str(journal), "seconds": seconds})
    wait_until(
        lambda: any(e == "start" for e, *_ in entries(journal)),
        timeout=30,
        message=lambda: f"the stubborn step never started\n{workers.logs()}",
    )
    quick = durable.start(Quick, {"journal": str(journal)})

    assert_workflow_completed(quick, timeout=60)
    assert_workflow_completed(stubborn, timeout=60)

    # The worker's one slot stayed taken by the abandoned thread.
    assert at(journal, "quick", wid=quick) >= at(journal, "end", attempt=1, wid=stubborn)


def test_cancelling_an_execution_asks_its_running_step_to_stop(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    # The lease keeper renews every lease_seconds / 3: that is when a cancel is noticed.
    (worker,) = workers.start(1, lease_seconds=1.5, workflow_modules=MODULES)
    wid = durable.start(UntilCancelled, {"journal": str(journal)})
    wait_until(
        lambda: bool(entries(journal)),
        timeout=30,
        message=lambda: f"the step never started\n{workers.logs()}",
    )

    durable.cancel(wid, reason="changed my mind")

    wait_until(
        lambda: len(entries(journal)) == 2,
        timeout=10,
        message=lambda: f"the step did not stop\n{workers.logs()}",
    )
    assert [e for e, *_ in entries(journal)] == ["start", "stopped"]
    assert WorkflowExecution.objects.get(workflow_id=wid).status == "cancelled"
    worker.wait_for_output("asking it to stop")


def test_a_draining_worker_asks_the_steps_it_gives_up_to_stop(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    (worker,) = workers.start(1, workflow_modules=MODULES)  # --shutdown-timeout 5
    wid = durable.start(UntilCancelled, {"journal": str(journal)})
    wait_until(
        lambda: bool(entries(journal)),
        timeout=30,
        message=lambda: f"the step never started\n{workers.logs()}",
    )

    assert worker.terminate(timeout=30) == 0

    # Given up after the drain's 5 s, the step saw ctx.cancelled and returned; its claim
    # went back to the queue, and its late checkpoint was refused.
    assert [e for e, *_ in entries(journal)] == ["start", "stopped"]
    assert f"releasing wait_for_cancel of {wid} unfinished at shutdown" in worker.output()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status in ("pending", "running")
    assert not execution.steps.filter(status="completed").exists()
