"""`@step(transactional=True)`: the step's database writes commit with its checkpoint, so
they happen exactly once; a plain step's writes are at-least-once (the contrast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import durable
from durable import DefinitionError, Workflow, step
from durable.testing import assert_workflow_completed
from testproject.demo.models import LedgerEntry
from tests.crash.workflows import PlainBooking, TransactionalBooking, TransactionalRetry
from tests.support.workers import pid_of, wait_until

pytestmark = pytest.mark.e2e

WORKFLOW_MODULES = "tests.crash.workflows"


def runs(marker: Path) -> list[int]:
    return [int(line) for line in marker.read_text().split()] if marker.exists() else []


def test_transactional_step_that_fails_rolls_back_its_writes_and_the_retry_writes_once(
    workers,
):
    workers.start(1, workflow_modules=WORKFLOW_MODULES)
    wid = durable.start(TransactionalRetry)

    execution = assert_workflow_completed(wid, timeout=30)

    # Attempt 1 booked "attempt-1" and then raised: the booking went with the failure.
    assert list(LedgerEntry.objects.values_list("key", flat=True)) == [f"{wid}:attempt-2"]
    attempts = execution.steps.filter(step="book_once").order_by("attempt")
    assert [(row.attempt, row.status) for row in attempts] == [(1, "failed"), (2, "completed")]
    assert "bank hung up" in attempts[0].error["message"]
    assert execution.context["booked"] is True


@pytest.mark.parametrize(
    ("workflow", "bookings"),
    [
        pytest.param(TransactionalBooking, 1, id="transactional-exactly-once"),
        # Documented contrast: a plain step's writes commit as they happen, so the run
        # the worker died in leaves its booking behind and the rerun books again.
        pytest.param(PlainBooking, 2, id="plain-at-least-once"),
    ],
)
def test_worker_killed_after_a_step_wrote_its_row(workers, tmp_path, workflow, bookings):
    marker = tmp_path / "runs"
    (doomed,) = workers.start(1, lease_seconds=2, workflow_modules=WORKFLOW_MODULES)
    wid = durable.start(workflow, {"marker": str(marker)})
    # The marker is written after the booking, while the step still runs.
    wait_until(
        lambda: runs(marker), timeout=30, message=lambda: f"no run started\n{workers.logs()}"
    )
    doomed.kill()
    (survivor,) = workers.start(1, lease_seconds=2, workflow_modules=WORKFLOW_MODULES)

    execution = assert_workflow_completed(wid, timeout=60)

    assert runs(marker) == [doomed.pid, survivor.pid]
    assert LedgerEntry.objects.filter(workflow_id=wid).count() == bookings
    (row,) = execution.steps.filter(step="book_then_block")
    assert (row.status, row.attempt, pid_of(row.worker_id)) == ("completed", 1, survivor.pid)


def test_transactional_async_step_is_a_definition_error():
    with pytest.raises(DefinitionError, match="transactional=True needs a sync step"):

        class AsyncBooking(Workflow):
            name = "crash_async_booking"

            @step(transactional=True)
            async def book(self, ctx: Any) -> None: ...
