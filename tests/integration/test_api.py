"""The public API: bad calls raise clear errors and write nothing; good calls do what they say."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import durable
from durable.models import StepExecution, Task, WorkflowExecution
from durable.serialization import NotJSONError
from durable.testing import run_until_idle, run_workflow
from tests.integration import workflows as wf
from tests.integration.support import claim_one, row_counts, run_next, snapshot, tasks_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def unchanged():
    """Asserts, after the test, that no row was written."""
    before = row_counts()
    yield
    assert row_counts() == before


# -- bad calls ----------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_start_with_an_unknown_workflow_name_raises_workflow_not_found() -> None:
    with pytest.raises(durable.WorkflowNotFound, match="no workflow named 'no_such_flow'"):
        durable.start("no_such_flow", {})


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("target", [object, int, 42, None, durable.Workflow, wf.OneStep()])
def test_start_with_something_that_is_not_a_workflow_raises_type_error(target) -> None:
    with pytest.raises(TypeError, match="expected a Workflow subclass or a workflow name"):
        durable.start(target, {})


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("bad_input", [[1, 2], "text", 3, ("a", "b")])
def test_start_with_input_that_is_not_a_dict_raises_type_error(bad_input) -> None:
    with pytest.raises(TypeError, match="input must be a dict"):
        durable.start(wf.OneStep, bad_input)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("bad_input", "problem"),
    [
        ({"tags": {"a", "b"}}, r"input\['tags'\]: a set is not JSON"),
        ({"ratio": float("nan")}, "NaN"),
        ({"blob": b"\x00"}, "a bytes is not JSON"),
        ({"text": "nul\x00"}, "NUL"),
        ({"nested": {1: "int key"}}, "JSON keys must be strings"),
        ({"when": object()}, "not JSON-serialisable"),
    ],
)
def test_start_with_non_json_input_raises_naming_the_value(bad_input, problem) -> None:
    with pytest.raises(NotJSONError, match=problem):
        durable.start(wf.OneStep, bad_input)


@pytest.mark.usefixtures("unchanged")
def test_start_on_an_unknown_queue_raises_value_error() -> None:
    with pytest.raises(ValueError, match="queue 'nowhere' is not configured"):
        durable.start(wf.OneStep, {}, queue="nowhere")


@pytest.mark.usefixtures("unchanged")
def test_start_with_a_naive_scheduled_at_raises_value_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        durable.start(wf.OneStep, {}, scheduled_at=datetime(2030, 1, 1, 12, 0))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": "high"}, TypeError),
        ({"priority": True}, TypeError),
        ({"scheduled_at": "2030-01-01"}, TypeError),
        ({"idempotency_key": ""}, ValueError),
        ({"idempotency_key": "k" * 256}, ValueError),
    ],
)
def test_start_with_bad_options_raises(options, error) -> None:
    with pytest.raises(error):
        durable.start(wf.OneStep, {}, **options)


@pytest.mark.usefixtures("unchanged")
def test_get_execution_of_an_unknown_id_raises_execution_not_found() -> None:
    with pytest.raises(durable.ExecutionNotFound, match="no execution with id 'missing'"):
        durable.get_execution("missing")


@pytest.mark.usefixtures("unchanged")
def test_cancel_of_an_unknown_id_raises_execution_not_found() -> None:
    with pytest.raises(durable.ExecutionNotFound):
        durable.cancel("missing")


def test_cancelling_a_finished_execution_raises_invalid_transition_and_changes_nothing() -> None:
    execution = run_workflow(wf.OneStep, {"echo": 1})
    assert execution.status == "completed"
    before = snapshot(execution.workflow_id)

    with pytest.raises(durable.InvalidTransition, match="already completed"):
        durable.cancel(execution.workflow_id, reason="too late")
    assert snapshot(execution.workflow_id) == before


@pytest.mark.usefixtures("unchanged")
def test_unknown_status_in_list_and_find_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown status 'finished'"):
        durable.list_executions(status="finished")
    with pytest.raises(ValueError, match="unknown status 'done'"):
        durable.find_executions(status="done")


@pytest.mark.usefixtures("unchanged")
def test_unknown_workflow_in_queries_raises() -> None:
    with pytest.raises(durable.WorkflowNotFound):
        durable.list_executions(workflow="no_such_flow")
    with pytest.raises(durable.WorkflowNotFound):
        durable.get_metrics("no_such_flow")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("period", ["yesterday", "last_week", 7, None, ["last_hour"]])
def test_get_metrics_with_a_bad_period_raises_value_error(period) -> None:
    with pytest.raises(ValueError, match="unknown period"):
        durable.get_metrics(wf.OneStep, period=period)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("time_range", "error"),
    [
        ("today", TypeError),
        ((datetime(2030, 1, 1, tzinfo=UTC),), TypeError),
        (("2030-01-01", None), TypeError),
        ((None, datetime(2030, 1, 1)), ValueError),
    ],
)
def test_find_executions_with_a_bad_time_range_raises(time_range, error) -> None:
    with pytest.raises(error, match="time_range"):
        durable.find_executions(time_range=time_range)


def test_an_idempotency_key_of_another_workflow_raises_and_starts_nothing() -> None:
    first = durable.start(wf.OneStep, {}, idempotency_key="shared-key")
    before = row_counts()

    with pytest.raises(ValueError, match=r"already belongs to execution .* 'it_one_step'"):
        durable.start(wf.TwoSteps, {}, idempotency_key="shared-key")
    assert row_counts() == before
    assert durable.start("it_one_step", {}, idempotency_key="shared-key") == first


# -- starting -----------------------------------------------------------------------------


def test_start_by_name_and_by_class_create_the_same_kind_of_execution() -> None:
    by_class = durable.get_execution(durable.start(wf.OneStep, {"echo": "x"}))
    by_name = durable.get_execution(durable.start("it_one_step", {"echo": "x"}))

    for execution in (by_class, by_name):
        assert execution.workflow_name == "it_one_step"
        assert execution.workflow_module == "tests.integration.workflows"
        assert execution.status == "pending"
        assert execution.input == {"echo": "x"}
        assert execution.context == {"echo": "x"}
        assert execution.queue == "default"
    assert by_class.workflow_id != by_name.workflow_id


def test_start_stores_input_as_it_will_be_read_back() -> None:
    wid = durable.start(wf.OneStep, {"when": "2030-05-06T07:08:09Z", "pair": (1, 2)})

    assert durable.get_execution(wid).input == {"when": "2030-05-06T07:08:09Z", "pair": [1, 2]}


def test_start_refuses_a_datetime_naming_where_it_is_and_starts_nothing() -> None:
    when = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)

    with pytest.raises(NotJSONError, match=r"input\['when'\]: a datetime would come back"):
        durable.start(wf.OneStep, {"when": when})
    assert not WorkflowExecution.objects.exists()


def test_the_same_idempotency_key_returns_the_same_execution() -> None:
    first = durable.start(wf.OneStep, {"echo": 1}, idempotency_key="order-123")
    second = durable.start(wf.OneStep, {"echo": 2}, idempotency_key="order-123")
    other = durable.start(wf.OneStep, {"echo": 3}, idempotency_key="order-456")

    assert first == second
    assert other != first
    assert WorkflowExecution.objects.filter(idempotency_key="order-123").count() == 1
    assert durable.get_execution(first).input == {"echo": 1}
    assert len(tasks_of(first)) == 1
    run_until_idle()
    # Still the same id once the first run has finished.
    assert durable.start(wf.OneStep, {}, idempotency_key="order-123") == first
    assert WorkflowExecution.objects.count() == 2


def test_higher_priority_executions_are_claimed_first() -> None:
    low = durable.start(wf.OneStep, {}, priority=1)
    high = durable.start(wf.OneStep, {}, priority=10)
    middle = durable.start(wf.OneStep, {}, priority=5)
    negative = durable.start(wf.OneStep, {}, priority=-3)
    plain = durable.start(wf.OneStep, {})

    order = []
    while (claim := claim_one()) is not None:
        order.append(claim.workflow_id)
    assert order == [high, middle, low, plain, negative]


def test_equal_priorities_are_claimed_oldest_first() -> None:
    ids = [durable.start(wf.OneStep, {}) for _ in range(4)]

    claimed = [c.workflow_id for c in durable_claims(4)]
    assert claimed == ids


def durable_claims(limit: int):
    from durable.store import claims

    return claims.claim_tasks("default", limit, worker_id="w", lease_seconds=30, using="default")


def test_a_scheduled_execution_is_not_claimed_before_it_is_due() -> None:
    due = timezone.now() + timedelta(seconds=0.6)
    wid = durable.start(wf.OneStep, {"echo": "later"}, scheduled_at=due)
    execution = durable.get_execution(wid)
    assert execution.scheduled_at == due
    assert tasks_of(wid)[0].run_at == due

    assert claim_one() is None
    assert run_until_idle(skip_delays=False) == 0
    assert durable.get_execution(wid).status == "pending"

    time.sleep(max(0.0, (due - timezone.now()).total_seconds()) + 0.05)
    assert run_until_idle(skip_delays=False) == 1
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert execution.started_at >= due
    assert execution.result == "later"


def test_a_start_on_another_queue_puts_its_steps_there() -> None:
    wid = durable.start(wf.OneStep, {}, queue="high_priority")

    assert durable.get_execution(wid).queue == "high_priority"
    assert claim_one("default") is None
    run_next("high_priority")
    assert durable.get_execution(wid).status == "completed"


# -- cancelling ---------------------------------------------------------------------------


def test_cancel_drops_queued_tasks_and_the_execution_never_runs() -> None:
    wid = durable.start(wf.TwoSteps, {})
    durable.cancel(wid, reason="user_cancelled")

    execution = durable.get_execution(wid)
    assert execution.status == "cancelled"
    assert execution.error["reason"] == "user_cancelled"
    assert execution.completed_at is not None
    assert tasks_of(wid) == []
    assert run_until_idle() == 0
    assert not StepExecution.objects.filter(execution=execution).exists()


def test_cancel_mid_step_discards_the_running_attempt_and_nothing_runs_after() -> None:
    wid = durable.start(wf.TwoSteps, {})
    run_next()  # step_one
    claim = claim_one()  # step_two is running on some worker...
    assert claim is not None
    durable.cancel(wid)

    from durable.engine.adapters import queue_adapter
    from durable.engine.executor import execute

    execute(claim, queue_adapter())  # ...and finishes after the cancel.
    execution = durable.get_execution(wid)
    assert execution.status == "cancelled"
    assert "two" not in execution.context
    assert execution.context["one"] is True
    (row,) = StepExecution.objects.filter(execution=execution, step="step_two")
    assert row.status == "failed"
    assert row.error["type"] == "Interrupted"
    assert tasks_of(wid) == []
    assert run_until_idle() == 0
    with pytest.raises(durable.InvalidTransition):
        durable.cancel(wid)


def test_cancel_during_a_retry_backoff_drops_the_retry() -> None:
    wid = durable.start(wf.FlakyConstant, {})
    run_until_idle(skip_delays=False)
    assert len(tasks_of(wid)) == 1

    durable.cancel(wid)
    assert tasks_of(wid) == []
    assert run_until_idle() == 0
    assert durable.get_execution(wid).status == "cancelled"


# -- querying -----------------------------------------------------------------------------


def test_get_execution_with_logs_prefetches_the_steps() -> None:
    execution = run_workflow(wf.TwoSteps, {})

    fetched = durable.get_execution(execution.workflow_id, include_logs=True)
    assert [s.step for s in fetched.steps.all()] == ["step_one", "step_two"]


def test_list_executions_filters_by_workflow_and_status_newest_first() -> None:
    done = [run_workflow(wf.OneStep, {}).workflow_id for _ in range(3)]
    failed = run_workflow(wf.DefaultRetries, {}).workflow_id
    waiting = durable.start(wf.OneStep, {})

    ids = lambda qs: [e.workflow_id for e in qs]  # noqa: E731
    assert ids(durable.list_executions()) == [waiting, failed, *reversed(done)]
    assert ids(durable.list_executions(workflow=wf.OneStep)) == [waiting, *reversed(done)]
    assert ids(durable.list_executions(workflow="it_one_step", status="completed")) == list(
        reversed(done)
    )
    assert ids(durable.list_executions(status="pending")) == [waiting]
    assert ids(durable.list_executions(status="failed")) == [failed]
    assert ids(durable.list_executions(limit=2)) == [waiting, failed]
    assert ids(durable.list_executions(limit=2, offset=2)) == list(reversed(done))[:2]
    assert len(durable.list_executions(limit=None)) == 5


def test_find_executions_by_current_step_status_and_time_range() -> None:
    finished = run_workflow(wf.OneStep, {}).workflow_id
    at_one = durable.start(wf.TwoSteps, {})
    at_two = durable.start(wf.TwoSteps, {})
    Task.objects.filter(execution__workflow_id=at_one).update(priority=-1)
    run_next()  # at_two moves on to step_two
    ids = lambda qs: {e.workflow_id for e in qs}  # noqa: E731

    assert ids(durable.find_executions(wf.TwoSteps, current_step="step_one")) == {at_one}
    assert ids(durable.find_executions(wf.TwoSteps, current_step="step_two")) == {at_two}
    assert ids(durable.find_executions(current_step="step_two", status="running")) == {at_two}
    assert ids(durable.find_executions(current_step="step_two", status="pending")) == set()
    assert ids(durable.find_executions(status="completed")) == {finished}

    base = datetime(2031, 1, 1, tzinfo=UTC)
    for offset, wid in enumerate((at_one, at_two, finished)):  # one hour apart
        WorkflowExecution.objects.filter(workflow_id=wid).update(
            created_at=base + timedelta(hours=offset)
        )
    window = (base + timedelta(minutes=30), base + timedelta(hours=2))
    assert ids(durable.find_executions(time_range=window)) == {at_two}
    assert ids(durable.find_executions(time_range=(base, None))) == {at_one, at_two, finished}
    assert ids(durable.find_executions(time_range=(None, base + timedelta(hours=1)))) == {at_one}
    assert ids(durable.find_executions(time_range=(base, base))) == set()


# -- metrics ------------------------------------------------------------------------------


def make_executions(workflow_name: str, status: str, durations, *, age=timedelta()) -> None:
    for duration in durations:
        execution = WorkflowExecution.objects.create(
            workflow_name=workflow_name,
            workflow_module="tests",
            status=status,
            duration_ms=duration,
        )
        WorkflowExecution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - age)


def test_get_metrics_on_a_known_data_set() -> None:
    make_executions("it_one_step", "completed", range(100, 2001, 100))  # 20 runs
    make_executions("it_one_step", "failed", [50, 60, 70])
    make_executions("it_one_step", "compensated", [5000])
    make_executions("it_one_step", "compensation_failed", [])
    make_executions("it_one_step", "running", [None, None])
    make_executions("it_one_step", "cancelled", [10])
    # Outside the period and another workflow's runs do not count.
    make_executions("it_one_step", "completed", [999_999], age=timedelta(days=2))
    make_executions("it_two_steps", "completed", [1, 2, 3])

    metrics = durable.get_metrics(wf.OneStep, period="last_24_hours")

    assert metrics == {
        "total_executions": 27,
        "successful": 20,
        "failed": 4,
        "success_rate": pytest.approx(20 / 24),
        "avg_duration_ms": 1050.0,
        "p95_duration_ms": 1900,
    }
    all_time = durable.get_metrics("it_one_step", period="all_time")
    assert all_time["total_executions"] == 28
    assert all_time["p95_duration_ms"] == 2000
    assert durable.get_metrics(period=timedelta(days=1))["total_executions"] == 30


def test_get_metrics_with_no_executions() -> None:
    assert durable.get_metrics(wf.OneStep) == {
        "total_executions": 0,
        "successful": 0,
        "failed": 0,
        "success_rate": None,
        "avg_duration_ms": None,
        "p95_duration_ms": None,
    }


def test_get_metrics_counts_real_runs() -> None:
    for _ in range(3):
        run_workflow(wf.OneStep, {})
    run_workflow(wf.Saga, {})

    assert durable.get_metrics(wf.OneStep, period="last_hour")["successful"] == 3
    saga = durable.get_metrics(wf.Saga)
    assert (saga["successful"], saga["failed"], saga["success_rate"]) == (0, 1, 0.0)
    completed = durable.get_metrics(wf.OneStep)
    assert completed["avg_duration_ms"] is not None
    assert completed["p95_duration_ms"] is not None
