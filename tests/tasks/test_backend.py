"""django-tasks' own backend behaviour (ported from its database backend's tests), run on
Durable inline: tasks are enqueued the standard way and run by `run_until_idle`."""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import SuspiciousOperation
from django.test import override_settings
from django.utils import timezone

import durable
from durable.dsl import registry
from durable.exceptions import WorkflowNotFound
from durable.models import StepExecution, WorkflowExecution
from durable.tasks import DurableBackend
from durable.tasks.framework import (
    InvalidTask,
    InvalidTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    default_task_backend,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from durable.testing import advance_time, run_until_idle
from tests.tasks import tasks as t

pytestmark = pytest.mark.django_db


def run(result):
    run_until_idle()
    result.refresh()
    return result


def test_backend_is_durable_and_declares_what_it_supports():
    backend = task_backends["default"]
    assert isinstance(backend, DurableBackend)
    assert default_task_backend.alias == "default"
    assert backend.supports_defer
    assert backend.supports_async_task
    assert backend.supports_get_result
    assert backend.supports_priority


@pytest.mark.parametrize("task", [t.noop_task, t.noop_task_async])
def test_enqueue_returns_a_ready_result_and_sends_the_signal(task):
    received = []

    def capture(sender, task_result, **kwargs):
        received.append((sender, task_result))

    task_enqueued.connect(capture, dispatch_uid="tasks-test", weak=False)
    try:
        result = task.enqueue(1, two=3)
    finally:
        task_enqueued.disconnect(capture, dispatch_uid="tasks-test")

    assert result.status == TaskResultStatus.READY
    assert not result.is_finished
    assert result.enqueued_at is not None
    assert result.started_at is None
    assert result.last_attempted_at is None
    assert result.finished_at is None
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert result.task == task
    assert result.args == [1]
    assert result.kwargs == {"two": 3}
    assert result.attempts == 0
    assert result.backend == "default"
    assert received == [(DurableBackend, result)]


def test_each_task_is_one_execution_named_after_the_task():
    result = t.echo.using(priority=7).enqueue(1, [2, 3], x={"y": None})
    execution = durable.get_execution(result.id)
    assert execution.workflow_name == "task:default:tests.tasks.tasks.echo"
    assert execution.status == "pending"
    assert execution.queue == "default"
    assert execution.priority == 7
    assert execution.input == {"args": [1, [2, 3]], "kwargs": {"x": {"y": None}}}
    run(result)
    execution.refresh_from_db()
    assert execution.status == "completed"
    assert execution.result == {"args": [1, [2, 3]], "kwargs": {"x": {"y": None}}}
    assert list(execution.steps.values_list("step", flat=True)) == ["run"]


def test_aenqueue_and_aget_result():
    result = async_to_sync(t.noop_task_async.aenqueue)(5)
    assert result.status == TaskResultStatus.READY
    assert result.args == [5]
    assert async_to_sync(default_task_backend.aget_result)(result.id) == result
    run_until_idle()
    async_to_sync(result.arefresh)()
    assert result.status == TaskResultStatus.SUCCESSFUL


def test_get_result_equals_the_enqueued_result():
    result = default_task_backend.enqueue(t.noop_task, [], {})
    assert default_task_backend.get_result(result.id) == result
    assert t.noop_task.get_result(result.id) == result


def test_get_result_of_another_task_is_a_mismatch():
    result = t.noop_task.enqueue()
    with pytest.raises(TaskResultMismatch):
        t.calculate_meaning_of_life.get_result(result.id)


@pytest.mark.parametrize("task", [t.calculate_meaning_of_life, t.calculate_meaning_of_life_async])
def test_refresh_after_the_task_ran(task):
    result = task.enqueue()
    run(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.is_finished
    assert result.return_value == 42
    assert result.attempts == 1
    assert result.worker_ids == ["inline"]
    assert result.errors == []
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at


def test_get_missing_result():
    for result_id in [str(uuid.uuid4()), "123", ""]:
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(str(uuid.uuid4()))


def test_workflow_executions_and_other_backends_results_are_not_task_results():
    from tests.e2e.workflows import ThreeSteps

    wid = durable.start(ThreeSteps, {})
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(wid)
    result = t.noop_task.using(backend="retrying").enqueue()
    assert task_backends["retrying"].get_result(result.id).backend == "retrying"
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)


def test_failing_task_records_the_exception_and_traceback():
    result = run(t.failing_task_value_error.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.is_finished
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.enqueued_at <= result.started_at <= result.finished_at
    (error,) = result.errors
    assert error.exception_class is ValueError
    assert error.exception_class_path == "builtins.ValueError"
    assert error.traceback.endswith("ValueError: This task failed due to ValueError\n")
    assert result.attempts == 1


def test_failing_async_task():
    result = run(t.failing_task_async.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert "This async task failed" in result.errors[0].traceback


def test_complex_exception():
    result = run(t.complex_exception.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_complex_return_value_fails_the_task():
    result = run(t.complex_return_value.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    # As Django's own backends: the TypeError of django.utils.json.normalize_json.
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1: "one"}, "the key 1 at the top (JSON keys are strings)"),
        ([1.5, {"x": math.inf}], "inf at [1]['x']"),
        (math.nan, "nan at the top"),
    ],
)
def test_a_return_value_json_would_change_fails_the_task_for_good(value, problem):
    result = run(t.return_this.using(backend="retrying").enqueue(repr(value)))
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1  # another attempt would return the same
    assert result.errors[0].exception_class is TypeError
    assert problem in result.errors[0].traceback


@pytest.mark.parametrize("task", [t.failing_task_system_exit, t.exit_task])
def test_system_exit_fails_the_task_not_the_worker(task):
    result = run(task.enqueue())
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is SystemExit


@pytest.mark.parametrize("task", [t.get_task_id, t.get_task_id_async])
def test_takes_context(task):
    result = run(task.enqueue())
    assert result.return_value == result.id


def test_context_sees_the_running_result_and_its_attempt():
    result = run(t.context_status.enqueue(1))
    assert result.return_value == "RUNNING"


def test_priority_maps_to_durable_priority_and_orders_the_work():
    labels = {}
    for priority in [-2, 10, 0, 100, -100, 2]:
        result = t.record_order.using(priority=priority).enqueue(str(priority))
        labels[result.id] = priority
    run_until_idle()
    order = [
        labels[row.execution.workflow_id]
        for row in StepExecution.objects.select_related("execution").order_by("id")
    ]
    assert order == [100, 10, 2, 0, -2, -100]
    assert {e.workflow_id: e.priority for e in WorkflowExecution.objects.all()} == labels


def test_run_after_defers_the_task():
    result = t.noop_task.using(run_after=timezone.now() + timedelta(hours=10)).enqueue()
    assert durable.get_execution(result.id).scheduled_at == result.task.run_after
    assert default_task_backend.get_result(result.id).task.run_after == result.task.run_after
    assert run_until_idle(skip_delays=False) == 0
    result.refresh()
    assert result.status == TaskResultStatus.READY
    advance_time(timedelta(hours=10))
    assert run_until_idle(skip_delays=False) == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


def test_run_after_and_priority_order_due_work():
    now = timezone.now()
    plan = {
        "old": dict(priority=20, run_after=now - timedelta(hours=2)),
        "very_old": dict(priority=20, run_after=now - timedelta(hours=10)),
        "far_future": dict(run_after=now + timedelta(hours=10)),
        "high_far_future": dict(priority=10, run_after=now + timedelta(hours=10)),
        "future": dict(run_after=now + timedelta(hours=2)),
        "high": dict(priority=10),
        "low": dict(priority=2),
        "lower": dict(priority=-2),
    }
    for label, options in plan.items():
        t.record_order.using(**options).enqueue(label)
    run_until_idle(skip_delays=False)
    ran = [row.execution.result for row in StepExecution.objects.select_related("execution")]
    assert ran == ["very_old", "old", "high", "low", "lower"]


def test_retries_come_from_the_backend_options(tmp_path):
    counter = str(tmp_path / "calls")
    result = run(t.flaky.using(backend="retrying").enqueue(counter, 2))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3
    assert result.attempts == 3
    assert [e.exception_class for e in result.errors] == [RuntimeError, RuntimeError]
    assert "failure 2 of 2" in result.errors[1].traceback


def test_retries_stop_after_max_attempts(tmp_path):
    result = run(t.flaky.using(backend="retrying").enqueue(str(tmp_path / "calls"), 10))
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert len(result.errors) == 3


def test_default_backend_runs_a_task_once(tmp_path):
    result = run(t.flaky.enqueue(str(tmp_path / "calls"), 1))
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1


def test_a_task_may_set_its_own_retry_policy(tmp_path):
    result = run(t.flaky_with_own_retry.enqueue(str(tmp_path / "calls"), 4))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 5


def test_retry_policy_is_validated():
    from durable.tasks import retry

    with pytest.raises(ValueError, match="max_attempts must be an int >= 1"):
        retry(max_attempts=0)
    with pytest.raises(ValueError, match="backoff must be one of"):
        retry(backoff="sometimes")
    with pytest.raises(TypeError, match="goes under @task"):
        retry(max_attempts=2)(t.noop_task)


def test_between_attempts_a_task_is_ready_again(tmp_path):
    result = t.flaky.using(backend="retrying").enqueue(str(tmp_path / "calls"), 1)
    from durable.engine.adapters import queue_adapter
    from durable.engine.executor import execute

    adapter = queue_adapter()
    (claim,) = adapter.claim("default", 1, worker_id="w1", lease_seconds=30)
    result.refresh()
    assert result.status == TaskResultStatus.RUNNING
    assert result.worker_ids == ["w1"]
    execute(claim, adapter)
    result.refresh()
    assert result.status == TaskResultStatus.READY
    assert result.attempts == 1
    assert len(result.errors) == 1
    run(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.worker_ids == ["w1", "inline"]


def test_cancelled_task_is_failed():
    result = t.noop_task.enqueue()
    durable.cancel(result.id)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.finished_at is not None


def test_a_stored_path_that_is_no_task_fails_without_running_anything():
    for path in ["subprocess.check_output", "tests.tasks.tasks.missing", "missing.module.func"]:
        result = t.noop_task.enqueue()
        WorkflowExecution.objects.filter(workflow_id=result.id).update(
            workflow_name=f"task:default:{path}"
        )
        run_until_idle()
        execution = durable.get_execution(result.id)
        assert execution.status == "failed"
        assert "NonRetryable" in execution.error["type"]
        with pytest.raises(SuspiciousOperation):
            default_task_backend.get_result(result.id)


def test_task_workflows_resolve_by_name_in_any_process():
    name = "task:retrying:tests.tasks.tasks.flaky"
    registry.unregister(name)
    definition = registry.get(name)
    assert definition.retry_for(definition.step("run")).max_attempts == 3
    with pytest.raises(WorkflowNotFound, match="no TASKS backend 'nope'"):
        registry.get("task:nope:tests.tasks.tasks.flaky")
    with pytest.raises(WorkflowNotFound, match="is not a Task of Django's Tasks framework"):
        registry.get("task:default:subprocess.check_output")


@override_settings(
    TASKS={
        "default": {
            "BACKEND": "durable.tasks.DurableBackend",
            "OPTIONS": {"max_attempts": 2, "backoff": "constant", "base": 0},
        }
    }
)
def test_changed_options_remake_the_workflow(tmp_path):
    result = run(t.flaky.enqueue(str(tmp_path / "calls"), 1))
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 2


# Enqueue validation: every refusal raises and writes nothing.


def assert_nothing_written():
    assert not WorkflowExecution.objects.exists()


@override_settings(
    TASKS={"default": {"BACKEND": "durable.tasks.DurableBackend", "QUEUES": ["payments"]}}
)
def test_queue_not_listed_for_the_backend_is_refused():
    with pytest.raises(InvalidTask, match="Queue 'default' is not valid for backend"):
        t.noop_task.enqueue()
    result = t.noop_task.using(queue_name="payments").enqueue()
    assert durable.get_execution(result.id).queue == "payments"


def test_queue_not_configured_in_durable_is_refused():
    with pytest.raises(InvalidTask, match="not configured in DURABLE\\['QUEUES'\\]"):
        t.noop_task.using(queue_name="nowhere")
    assert_nothing_written()


@pytest.mark.parametrize("priority", [101, -101])
def test_priority_out_of_range_is_refused(priority):
    with pytest.raises(InvalidTask, match="priority must be a whole number"):
        t.noop_task.using(priority=priority)


def test_naive_run_after_is_refused():
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        t.noop_task.using(run_after=timezone.now().replace(tzinfo=None))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        # Django's own rule (django.utils.json.normalize_json) and its exceptions.
        ([{1, 2}], {}, TypeError, "Unsupported type: <class 'set'>"),
        ([datetime(2026, 1, 1)], {}, TypeError, "Unsupported type: <class 'datetime.datetime'>"),
        ([], {"x": object()}, TypeError, "Unsupported type: <class 'object'>"),
        ([b"\xff"], {}, ValueError, "Unsupported value: <class 'bytes'>"),
        # Accepted by Django's rule, changed by a JSON round trip: refused, naming where.
        ([{1: "a"}], {}, TypeError, "the key 1 at [0]"),
        ([], {"ratio": math.nan}, TypeError, "nan at ['ratio']"),
    ],
)
def test_arguments_that_would_not_come_back_as_given_are_refused(args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        t.noop_task.enqueue(*args, **kwargs)
    assert_nothing_written()


def test_arguments_come_back_as_django_normalizes_them():
    result = t.echo.enqueue((1, 2), b"bytes", key=("a", {"b": (3,)}))
    assert result.args == [[1, 2], "bytes"]
    assert result.kwargs == {"key": ["a", {"b": [3]}]}
    run(result)
    assert result.return_value == {"args": [[1, 2], "bytes"], "kwargs": result.kwargs}
    assert json.loads(json.dumps(result.return_value)) == result.return_value


def test_task_functions_must_be_module_level():
    from durable.tasks.framework import task

    with pytest.raises(InvalidTask, match="module level"):

        @task()
        def local() -> None: ...


@override_settings(
    TASKS={"default": {"BACKEND": "durable.tasks.DurableBackend", "OPTIONS": {"retries": 3}}}
)
def test_invalid_options_refuse_to_enqueue():
    with pytest.raises(InvalidTaskBackend, match="unknown OPTIONS key"):
        t.noop_task.enqueue()
    assert_nothing_written()


# task_started and task_finished: sent once committed, by the process that ran the task.


@pytest.fixture
def task_signals():
    received = []

    def capture(sender, task_result, signal, **kwargs):
        name = "started" if signal is task_started else "finished"
        received.append((name, sender, task_result.id, task_result.status))

    for signal in (task_started, task_finished):
        signal.connect(capture, dispatch_uid="tasks-test", weak=False)
    yield received
    for signal in (task_started, task_finished):
        signal.disconnect(capture, dispatch_uid="tasks-test")


@pytest.mark.django_db(transaction=True)
def test_started_and_finished_are_sent_with_the_committed_result(task_signals):
    ok = t.calculate_meaning_of_life.enqueue()
    failing = t.failing_task_value_error.enqueue()
    run_until_idle()
    by_id = {
        result_id: [
            (name, sender, status) for name, sender, i, status in task_signals if i == result_id
        ]
        for result_id in (ok.id, failing.id)
    }
    assert by_id[ok.id] == [
        ("started", DurableBackend, TaskResultStatus.RUNNING),
        ("finished", DurableBackend, TaskResultStatus.SUCCESSFUL),
    ]
    assert by_id[failing.id] == [
        ("started", DurableBackend, TaskResultStatus.RUNNING),
        ("finished", DurableBackend, TaskResultStatus.FAILED),
    ]


@pytest.mark.django_db(transaction=True)
def test_each_attempt_starts_and_the_task_finishes_once(task_signals, tmp_path):
    result = t.flaky.using(backend="retrying").enqueue(str(tmp_path / "calls"), 2)
    run_until_idle()
    assert [(name, status) for name, _, _, status in task_signals] == [
        ("started", TaskResultStatus.RUNNING),
        ("started", TaskResultStatus.RUNNING),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]
    assert {result_id for _, _, result_id, _ in task_signals} == {result.id}


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_task_finishes_failed_and_workflows_send_no_task_signal(task_signals):
    from tests.e2e.workflows import ThreeSteps

    result = t.noop_task.enqueue()
    durable.cancel(result.id)
    durable.start(ThreeSteps, {})
    run_until_idle()
    assert [(name, i, status) for name, _, i, status in task_signals] == [
        ("finished", result.id, TaskResultStatus.FAILED)
    ]
