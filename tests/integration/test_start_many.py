"""durable.start_many: many executions in one transaction, with the checks and the
idempotency of durable.start for each input, on the path start() itself takes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import durable
from durable.models import ExecutionStatus, FlowSlot, Task, TaskStatus, WorkflowExecution
from durable.serialization import NotJSONError
from durable.testing import run_until_idle
from tests.flowcontrol import workflows as fc
from tests.integration import workflows as wf
from tests.integration.support import row_counts

pytestmark = pytest.mark.django_db


def test_start_many_returns_one_id_per_input_in_order_and_each_runs() -> None:
    ids = durable.start_many(wf.Linear, [{"seed": n} for n in range(5)])

    assert len(ids) == len(set(ids)) == 5
    rows = {e.workflow_id: e for e in WorkflowExecution.objects.all()}
    assert [rows[wid].input for wid in ids] == [{"seed": n} for n in range(5)]
    assert all(rows[wid].status == ExecutionStatus.PENDING for wid in ids)
    assert Task.objects.filter(step="first", status=TaskStatus.READY).count() == 5
    run_until_idle()
    for n, wid in enumerate(ids):
        execution = durable.get_execution(wid)
        assert execution.status == "completed"
        assert execution.result == [n + 1, (n + 1) * 10]


def test_start_many_writes_in_one_statement_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement start is PostgreSQL's")
    with CaptureQueriesContext(connection) as queries:
        durable.start_many(wf.Linear, [{"seed": n} for n in range(50)])
    assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries]


def test_idempotency_keys_may_be_a_function_of_the_input() -> None:
    first = durable.start_many(
        wf.OneStep, [{"order": n} for n in range(3)], idempotency_key=lambda i: f"o-{i['order']}"
    )
    again = durable.start_many(
        wf.OneStep, [{"order": n} for n in (2, 3, 1)], idempotency_key=lambda i: f"o-{i['order']}"
    )

    assert again[0] == first[2]
    assert again[2] == first[1]
    assert again[1] not in first
    assert WorkflowExecution.objects.count() == 4
    assert durable.start(wf.OneStep, {"order": 0}, idempotency_key="o-0") == first[0]


def test_a_key_given_twice_in_one_call_starts_one_execution() -> None:
    ids = durable.start_many(wf.OneStep, [{"n": 1}, {"n": 2}], idempotency_key="same")

    assert ids[0] == ids[1]
    (execution,) = WorkflowExecution.objects.all()
    assert execution.input == {"n": 1}  # the first input given wins, as with start()


def test_no_input_at_all_starts_nothing() -> None:
    assert durable.start_many(wf.OneStep, []) == []
    assert WorkflowExecution.objects.count() == 0


def test_options_apply_to_every_execution() -> None:
    later = timezone.now() + timedelta(hours=1)
    ids = durable.start_many(wf.OneStep, [{}, {}], queue="payments", priority=7, scheduled_at=later)

    for wid in ids:
        execution = WorkflowExecution.objects.get(workflow_id=wid)
        assert (execution.queue, execution.priority, execution.scheduled_at) == (
            "payments",
            7,
            later,
        )
        (task,) = Task.objects.filter(execution=execution)
        assert (task.queue, task.priority, task.run_at) == ("payments", 7, later)


def test_executions_with_a_concurrency_key_take_slots_in_order() -> None:
    ids = durable.start_many(fc.OnePerCustomer, [{"customer": "acme", "n": n} for n in range(3)])

    slots = {s.execution.workflow_id: s.admitted for s in FlowSlot.objects.all()}
    assert [slots[wid] for wid in ids] == [True, False, False]
    statuses = [Task.objects.get(execution__workflow_id=wid, step="begin").status for wid in ids]
    assert statuses == [TaskStatus.READY, TaskStatus.HELD, TaskStatus.HELD]


# -- bad calls: one bad input starts nothing -----------------------------------------------


@pytest.fixture
def unchanged() -> Any:
    before = row_counts()
    yield
    assert row_counts() == before


@pytest.mark.usefixtures("unchanged")
def test_a_bad_input_among_good_ones_is_named_and_starts_none() -> None:
    with pytest.raises(TypeError, match=r"inputs\[2\] must be a dict"):
        durable.start_many(wf.OneStep, [{}, {}, ["not", "a", "dict"]])
    with pytest.raises(NotJSONError, match=r"inputs\[1\]"):
        durable.start_many(wf.OneStep, [{}, {"x": object()}])


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("inputs", [{"a": 1}, "abc", b"abc"])
def test_inputs_must_be_a_list_of_dicts(inputs: Any) -> None:
    with pytest.raises(TypeError, match="inputs must be a list of dicts"):
        durable.start_many(wf.OneStep, inputs)


@pytest.mark.usefixtures("unchanged")
def test_a_bad_key_from_the_key_function_starts_none() -> None:
    with pytest.raises(ValueError, match="idempotency_key must be a string of 1 to 255"):
        durable.start_many(wf.OneStep, [{"n": 1}, {"n": 2}], idempotency_key=lambda i: i["n"])


def test_a_key_of_another_workflow_starts_none() -> None:
    durable.start(wf.Linear, {"seed": 1}, idempotency_key="taken")
    before = row_counts()

    with pytest.raises(
        ValueError, match=r"already belongs to execution .* of workflow 'it_linear'"
    ):
        durable.start_many(
            wf.OneStep,
            [{"n": 1}, {"n": 2}],
            idempotency_key=lambda i: "taken" if i["n"] == 2 else "free",
        )

    assert row_counts() == before


@pytest.mark.usefixtures("unchanged")
def test_an_unknown_queue_starts_none() -> None:
    with pytest.raises(ValueError, match="queue 'nowhere' is not configured"):
        durable.start_many(wf.OneStep, [{}], queue="nowhere")
