"""Retrying a compensated saga re-runs what its compensations undid; fork starts a new
linked run from a step. Run inline here; tests/semantics_api/test_saga_on_worker.py runs the
same scenario on a real worker process."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import durable
from durable.models import Task, WorkflowExecution
from durable.testing import run_until_idle
from tests.deploys.workflows import deployed
from tests.semantics_api.workflows import (
    Adds,
    Breaks,
    TripSaga,
    TripWithoutFlights,
    active_bookings,
    ledger_lines,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trip(tmp_path: Path) -> dict[str, str]:
    decline = tmp_path / "decline"
    decline.touch()
    return {
        "ledger": str(tmp_path / "ledger.txt"),
        "decline": str(decline),
        "stuck": str(tmp_path / "stuck"),
    }


def compensated_trip(trip: dict[str, str]) -> str:
    wid = durable.start(TripSaga, trip)
    run_until_idle()
    assert durable.get_execution(wid).status == "compensated"
    assert ledger_lines(Path(trip["ledger"])) == [
        "book flight-1-0",
        "book hotel-1-1",
        "cancel hotel-1-1",
        "cancel flight-1-0",
    ]
    return wid


def test_retry_of_a_compensated_saga_rebooks_before_it_charges(trip):
    wid = compensated_trip(trip)
    Path(trip["decline"]).unlink()
    durable.retry(wid)
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    lines = ledger_lines(Path(trip["ledger"]))
    assert lines[4:] == [
        "book flight-2-4",
        "book hotel-2-5",
        "charge flight-2-4 hotel-2-5",
    ]
    # What the run reports as booked is booked, and nothing else is.
    assert active_bookings(lines) == {"flight-2-4", "hotel-2-5"}
    assert set(durable.get_result(wid).values()) == active_bookings(lines)


def test_a_retry_whose_charge_fails_again_compensates_again_and_never_completes(trip):
    wid = compensated_trip(trip)
    durable.retry(wid)
    run_until_idle()
    assert durable.get_execution(wid).status == "compensated"
    lines = ledger_lines(Path(trip["ledger"]))
    assert not any(line.startswith("charge") for line in lines)
    assert active_bookings(lines) == set()


def test_retry_of_a_compensated_saga_from_a_later_step_is_refused_naming_fork(trip):
    wid = compensated_trip(trip)
    before = WorkflowExecution.objects.get(workflow_id=wid)
    with pytest.raises(durable.InvalidTransition) as caught:
        durable.retry(wid, from_step="charge")
    message = str(caught.value)
    assert "undid work from 'book_flight' on" in message
    assert f"durable.fork('{wid}', from_step='charge')" in message
    after = WorkflowExecution.objects.get(workflow_id=wid)
    assert (after.status, after.updated_at, after.attempt_floor) == (
        "compensated",
        before.updated_at,
        before.attempt_floor,
    )
    assert not Task.objects.filter(execution=after).exists()


def test_retry_of_a_compensated_saga_from_its_first_compensated_step_is_allowed(trip):
    wid = compensated_trip(trip)
    Path(trip["decline"]).unlink()
    durable.retry(wid, from_step="book_flight")
    run_until_idle()
    assert durable.get_execution(wid).status == "completed"


def test_retry_of_a_compensation_failed_saga_reruns_from_the_first_compensated_step(trip):
    Path(trip["stuck"]).touch()
    wid = durable.start(TripSaga, trip)
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "compensation_failed"
    assert [e["step"] for e in execution.error["compensation_errors"]] == ["book_hotel"]
    assert ledger_lines(Path(trip["ledger"])) == [
        "book flight-1-0",
        "book hotel-1-1",
        "cancel flight-1-0",
    ]
    with pytest.raises(durable.InvalidTransition, match=r"durable\.fork"):
        durable.retry(wid, from_step="book_hotel")
    Path(trip["decline"]).unlink()
    Path(trip["stuck"]).unlink()
    durable.retry(wid)
    run_until_idle()
    assert durable.get_execution(wid).status == "completed"
    lines = ledger_lines(Path(trip["ledger"]))
    assert lines[3:] == ["book flight-2-3", "book hotel-2-4", "charge flight-2-3 hotel-2-4"]
    # The hotel whose cancellation failed stays booked (its error is on the run's record);
    # what the run reports as its bookings are booked.
    assert active_bookings(lines) == {"hotel-1-1", "flight-2-3", "hotel-2-4"}


def test_retry_of_a_plain_failure_still_starts_at_the_failed_step():
    # No compensation ran: the failed step is where a retry starts, as before.
    wid = durable.start(Breaks, {})
    run_until_idle()
    durable.retry(wid)
    run_until_idle()
    rows = durable.get_execution(wid).steps.order_by("id").values_list("step", "attempt")
    assert list(rows) == [("only", 1), ("only", 2)]


def test_fork_from_a_step_starts_a_linked_run_with_the_context_saved_before_it(trip):
    wid = compensated_trip(trip)
    Path(trip["decline"]).unlink()
    forked = durable.fork(wid, from_step="charge")
    assert forked != wid
    run_until_idle()
    fork = durable.get_execution(forked)
    assert fork.status == "completed"
    assert (fork.forked_from.workflow_id, fork.forked_from_step) == (wid, "charge")
    assert list(durable.get_execution(wid).forks.values_list("workflow_id", flat=True)) == [forked]
    # The fork charged the bookings of the context before `charge`: it ran no booking step.
    assert list(fork.steps.values_list("step", flat=True)) == ["charge"]
    assert fork.result == {"flight": "flight-1-0", "hotel": "hotel-1-1"}
    assert fork.input == durable.get_execution(wid).input
    # The source is left as it was.
    assert durable.get_execution(wid).status == "compensated"


def test_fork_without_a_step_starts_from_the_beginning_with_the_same_input(trip):
    wid = compensated_trip(trip)
    Path(trip["decline"]).unlink()
    forked = durable.fork(wid)
    run_until_idle()
    fork = durable.get_execution(forked)
    assert fork.status == "completed"
    assert (fork.forked_from_id, fork.forked_from_step) == (
        durable.get_execution(wid).pk,
        "",
    )
    assert list(fork.steps.values_list("step", flat=True)) == [
        "book_flight",
        "book_hotel",
        "charge",
    ]


def test_fork_refuses_bad_calls_and_starts_nothing(trip):
    done = durable.start(Adds, {"a": 1, "b": 2})
    run_until_idle()
    never_ran = durable.start(TripSaga, trip)  # not run: no step reached yet
    count = WorkflowExecution.objects.count()
    with pytest.raises(durable.ExecutionNotFound):
        durable.fork("no-such-id")
    with pytest.raises(ValueError, match="has no step or block 'nope'"):
        durable.fork(done, from_step="nope")
    with pytest.raises(TypeError, match="from_step must be a step name"):
        durable.fork(done, from_step=3)
    with pytest.raises(durable.InvalidTransition, match="never reached 'charge'"):
        durable.fork(never_ran, from_step="charge")
    assert WorkflowExecution.objects.count() == count


def test_durable_fork_command_prints_the_new_id_and_refuses_bad_steps(trip):
    wid = compensated_trip(trip)
    out = StringIO()
    call_command("durable_fork", wid, "--from-step", "charge", stdout=out)
    forked = out.getvalue().strip()
    assert durable.get_execution(forked).forked_from_step == "charge"
    with pytest.raises(CommandError, match="has no step or block 'nope'"):
        call_command("durable_fork", wid, "--from-step", "nope", stdout=StringIO())


def test_retry_refuses_when_a_compensated_step_is_gone_from_the_code(trip):
    wid = compensated_trip(trip)
    gone = pytest.raises(durable.InvalidTransition, match="compensated book_flight, which the")
    with deployed("semantics_trip_saga", TripWithoutFlights), gone:
        durable.retry(wid)
    assert durable.get_execution(wid).status == "compensated"
