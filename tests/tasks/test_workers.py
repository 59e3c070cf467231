"""Tasks enqueued through django-tasks run on real `durable_worker` processes, which list no
module for them: the worker makes each task's workflow from its name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from durable.models import StepExecution
from durable.tasks.framework import TaskResultStatus
from durable.testing import advance_time
from tests.support.workers import wait_until
from tests.tasks import tasks as t

pytestmark = pytest.mark.e2e


def finished(result, timeout: float = 30):
    def done() -> bool:
        result.refresh()
        return result.is_finished

    wait_until(done, timeout=timeout, message=lambda: f"{result.id} is {result.status}")
    return result


def test_workers_run_sync_async_failing_and_context_tasks(workers):
    workers.start(1)
    meaning = t.calculate_meaning_of_life.enqueue()
    meaning_async = t.calculate_meaning_of_life_async.enqueue()
    echo = t.echo.enqueue("a", n=1)
    failing = t.failing_task_value_error.enqueue()
    context = t.get_task_id_async.enqueue()
    exiting = t.exit_task.enqueue()

    assert finished(meaning).return_value == 42
    assert finished(meaning_async).return_value == 42
    assert finished(echo).return_value == {"args": ["a"], "kwargs": {"n": 1}}
    assert finished(context).return_value == context.id
    finished(failing)
    assert failing.status == TaskResultStatus.FAILED
    assert failing.errors[0].exception_class is ValueError
    assert failing.errors[0].traceback.endswith("ValueError: This task failed due to ValueError\n")
    assert finished(exiting).status == TaskResultStatus.FAILED
    # The worker survived the task's sys.exit() and ran everything on one process.
    assert meaning.worker_ids[0] == exiting.worker_ids[0]
    assert meaning.worker_ids[0].split(":")[-2] == str(workers.processes[0].pid)
    later = t.noop_task.enqueue()
    assert finished(later).status == TaskResultStatus.SUCCESSFUL


def test_workers_retry_with_the_backend_policy(workers, tmp_path):
    workers.start(1)
    result = t.flaky.using(backend="retrying").enqueue(str(tmp_path / "calls"), 2)
    finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.attempts == 3
    assert [e.exception_class for e in result.errors] == [RuntimeError, RuntimeError]


def test_workers_run_by_priority_and_wait_for_run_after(workers):
    results = {
        priority: t.record_order.using(priority=priority).enqueue(str(priority))
        for priority in [0, -50, 50, 10]
    }
    deferred = t.noop_task.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
    workers.start(1, concurrency=1)
    for result in results.values():
        finished(result)
    order = list(
        StepExecution.objects.filter(
            execution__workflow_name="task:default:tests.tasks.tasks.record_order"
        )
        .order_by("started_at", "id")
        .values_list("execution__result", flat=True)
    )
    assert order == ["50", "10", "0", "-50"]
    deferred.refresh()
    assert deferred.status == TaskResultStatus.READY
    assert deferred.attempts == 0
    advance_time(timedelta(hours=1))
    assert finished(deferred).status == TaskResultStatus.SUCCESSFUL
