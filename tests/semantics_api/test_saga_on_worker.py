"""The saga of issue 17 on a real worker process: book a flight, book a hotel, the charge
fails, both bookings are cancelled, then `durable.retry`. The worker writes every side
effect to a ledger file; the run must never end `completed` with a cancelled booking."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from durable.testing import wait_for_finish
from tests.semantics_api.workflows import active_bookings, ledger_lines

pytestmark = pytest.mark.e2e

MODULES = "tests.semantics_api.workflows"


def test_retry_of_the_compensated_saga_on_a_worker_rebooks_then_charges(workers, tmp_path):
    ledger, decline = tmp_path / "ledger.txt", tmp_path / "decline"
    decline.touch()
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start("semantics_trip_saga", {"ledger": str(ledger), "decline": str(decline)})
    assert wait_for_finish(wid, timeout=60).status == "compensated"
    assert ledger_lines(ledger) == [
        "book flight-1-0",
        "book hotel-1-1",
        "cancel hotel-1-1",
        "cancel flight-1-0",
    ]

    # Retried while the card is still declined: compensated again, never completed.
    durable.retry(wid)
    with pytest.raises(durable.WorkflowFailed) as caught:
        durable.get_result(wid, timeout=60)
    assert caught.value.status == "compensated"
    assert active_bookings(ledger_lines(ledger)) == set()

    # Retried once the card works: the bookings are made again before the charge.
    decline.unlink()
    durable.retry(wid)
    result = durable.get_result(wid, timeout=60)
    lines = ledger_lines(ledger)
    assert durable.get_execution(wid).status == "completed"
    charges = [line for line in lines if line.startswith("charge ")]
    assert charges == [f"charge {result['flight']} {result['hotel']}"]
    assert active_bookings(lines) == {result["flight"], result["hotel"]}
    assert lines[-3:] == [f"book {result['flight']}", f"book {result['hotel']}", charges[0]]


def test_fork_of_the_compensated_saga_on_a_worker_is_a_new_linked_run(workers, tmp_path):
    ledger, decline = tmp_path / "ledger.txt", tmp_path / "decline"
    decline.touch()
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start("semantics_trip_saga", {"ledger": str(ledger), "decline": str(decline)})
    assert wait_for_finish(wid, timeout=60).status == "compensated"
    decline.unlink()
    forked = durable.fork(wid, from_step="book_flight")
    result = durable.get_result(forked, timeout=60)
    assert durable.get_execution(forked).forked_from.workflow_id == wid
    assert durable.get_execution(wid).status == "compensated"
    assert active_bookings(ledger_lines(ledger)) == {result["flight"], result["hotel"]}
    assert Path(ledger).read_text().count("charge ") == 1
