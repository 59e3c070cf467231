"""Whatever a step does wrong, the attempt is recorded, the claim is released and the worker
survives: BaseExceptions, unprintable errors, non-JSON outputs and context writes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

import durable
from durable.models import Task, WorkflowExecution
from durable.testing import run_until_idle, run_workflow
from tests.integration import workflows as wf
from tests.integration.support import attempts

pytestmark = pytest.mark.django_db


def failed_run(how: str) -> tuple[WorkflowExecution, list]:
    execution = run_workflow(wf.Misbehaving, {"how": how})
    assert execution.status == "failed", (how, execution.status, execution.context)
    assert not Task.objects.filter(execution=execution).exists()
    assert "after_ran" not in execution.context
    return execution, attempts(execution.workflow_id, "misbehave")


@pytest.mark.parametrize(
    ("how", "error_type", "message"),
    [
        ("system_exit", "SystemExit", "3"),
        ("base_exception", "tests.integration.workflows.CustomBaseException", "custom base"),
    ],
)
def test_base_exceptions_fail_the_execution_without_killing_the_runner(
    how, error_type, message
) -> None:
    execution, rows = failed_run(how)

    # "Stop" signals are not retried.
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed")]
    assert rows[0].error["type"] == error_type
    assert rows[0].error["message"] == message
    assert execution.error["type"] == error_type
    assert "Traceback" in execution.error["traceback"]


@pytest.mark.parametrize(
    ("how", "error_type", "message"),
    [
        ("system_exit", "SystemExit", "4"),
        ("base_exception", "tests.integration.workflows.CustomBaseException", "async custom base"),
    ],
)
def test_base_exceptions_in_async_steps_fail_the_execution(how, error_type, message) -> None:
    execution = run_workflow(wf.AsyncMisbehaving, {"how": how})

    assert execution.status == "failed"
    assert execution.error["type"] == error_type
    assert execution.error["message"] == message
    assert not Task.objects.filter(execution=execution).exists()
    # The shared event loop survived: another async workflow still runs.
    assert run_workflow(wf.AsyncSteps, {"n": 1}).status == "completed"


@pytest.mark.parametrize("workflow", [wf.Misbehaving, wf.AsyncMisbehaving])
def test_keyboard_interrupt_stops_an_inline_run_and_records_nothing(workflow) -> None:
    workflow_id = durable.start(workflow, {"how": "keyboard_interrupt"})
    with pytest.raises(KeyboardInterrupt):
        run_until_idle()
    assert durable.get_execution(workflow_id).status == "running"
    assert [r.status for r in attempts(workflow_id, "misbehave")] == ["running"]


def run_until_idle_and_close() -> None:
    try:
        run_until_idle()
    finally:
        connections.close_all()  # this thread's own


@pytest.mark.django_db(transaction=True)  # the pool thread has a connection of its own
@pytest.mark.parametrize("workflow", [wf.Misbehaving, wf.AsyncMisbehaving])
def test_keyboard_interrupt_off_the_main_thread_fails_the_step_like_a_worker(workflow) -> None:
    # Workers run steps in pool threads, where a KeyboardInterrupt is the step's own raise.
    workflow_id = durable.start(workflow, {"how": "keyboard_interrupt"})
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_until_idle_and_close).result()
    execution = durable.get_execution(workflow_id)
    assert execution.status == "failed"
    assert execution.error["type"] == "KeyboardInterrupt"
    assert [(r.attempt, r.status) for r in attempts(workflow_id, "misbehave")] == [(1, "failed")]


def test_an_async_steps_own_timeout_error_is_recorded_as_itself() -> None:
    execution = run_workflow(wf.AsyncMisbehaving, {"how": "own_timeout"})

    assert execution.status == "failed"
    assert execution.error["type"] == "TimeoutError"
    assert execution.error["message"] == "upstream took too long"


def test_an_async_step_past_its_timeout_is_cancelled_and_fails_with_step_timeout() -> None:
    started = time.monotonic()
    execution = run_workflow(wf.AsyncSlow, {})

    assert time.monotonic() - started < 3
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.StepTimeout"
    assert "'dawdle' ran past its timeout of 0.2s" in execution.error["message"]


def test_an_exception_whose_str_raises_is_still_recorded() -> None:
    execution, rows = failed_run("unprintable")

    assert [r.attempt for r in rows] == [1, 2, 3]
    assert rows[0].error["type"] == "tests.integration.workflows.UnprintableError"
    assert "UnprintableError" in rows[0].error["message"]
    assert execution.error["type"] == "tests.integration.workflows.UnprintableError"


def test_an_exception_with_non_json_args_is_still_recorded() -> None:
    execution, rows = failed_run("non_json_args")

    assert rows[0].error["type"] == "ValueError"
    assert "bytes" in rows[0].error["message"]
    assert "\x00" not in rows[0].error["message"]
    assert execution.error["message"] == rows[-1].error["message"]


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("return_set", "a set is not JSON"),
        ("return_object", "a object is not JSON-serialisable"),
        ("return_nan", "NaN"),
    ],
)
def test_a_non_json_return_value_fails_the_step_naming_it(how, problem) -> None:
    execution, rows = failed_run(how)

    # Returning the same value again would fail again: not retried.
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed")]
    assert "return value of step 'misbehave'" in execution.error["message"]
    assert problem in execution.error["message"]
    assert rows[0].output is None


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("put_nan", "nan is not valid JSON"),
        ("put_nul", "NUL character"),
        ("put_set", "a set is not JSON"),
        ("put_bytes", "a bytes is not JSON"),
        ("put_colliding_keys", "JSON keys must be strings"),
        ("put_nested_inf", "inf is not valid JSON"),
    ],
)
def test_a_non_json_context_write_fails_the_step_with_a_clear_message(how, problem) -> None:
    execution, rows = failed_run(how)

    assert [(r.attempt, r.status) for r in rows] == [(1, "failed")]
    assert "context['bad']" in execution.error["message"]
    assert problem in execution.error["message"]
    assert "bad" not in execution.context
    assert execution.context == {"how": how}


def test_a_failed_execution_stays_failed_and_is_not_run_again() -> None:
    execution, _ = failed_run("system_exit")

    assert run_until_idle() == 0
    assert WorkflowExecution.objects.get(pk=execution.pk).status == "failed"
    with pytest.raises(durable.InvalidTransition):
        durable.cancel(execution.workflow_id)


def test_an_error_message_with_lone_surrogates_is_stored_escaped() -> None:
    execution = run_workflow(wf.Surrogates, {"how": "raise"})

    assert execution.status == "failed"
    assert execution.error["message"] == "bad \\ud800 text"
    assert [r.status for r in attempts(execution.workflow_id, "emit")] == ["failed", "failed"]


@pytest.mark.parametrize("how", ["put", "return"])
def test_lone_surrogates_written_or_returned_fail_the_step_clearly(how) -> None:
    execution = run_workflow(wf.Surrogates, {"how": how})

    assert execution.status == "failed"
    assert "unpaired surrogate" in execution.error["message"]
    assert [r.status for r in attempts(execution.workflow_id, "emit")] == ["failed"]
    assert "bad" not in execution.context


def test_a_step_output_storage_refuses_fails_the_step_instead_of_rerunning_it() -> None:
    wid = durable.start(wf.Unstorable, {"where": "step"})

    assert run_until_idle(max_tasks=5) == 1
    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    # Refused by normalize (integers of at most 4,300 digits), before storage would.
    assert (
        "return value of step 'record': integers may have at most 4300 digits"
        in (execution.error["message"])
    )
    assert execution.error["non_retryable"] is True
    assert [r.status for r in attempts(wid, "record")] == ["failed"]
    assert not Task.objects.filter(execution=execution).exists()


def test_a_compensation_output_storage_refuses_fails_the_compensation_once() -> None:
    wid = durable.start(wf.Unstorable, {"where": "compensation"})

    assert run_until_idle(max_tasks=10) == 3
    execution = durable.get_execution(wid)
    assert execution.status == "compensation_failed"
    assert execution.error["message"] == "trigger the compensation"
    (problem,) = execution.error["compensation_errors"]
    assert "'undo_record': integers may have at most 4300 digits" in problem["message"]


def test_a_workflow_class_that_cannot_be_instantiated_fails_its_attempts() -> None:
    wid = durable.start(wf.BrokenInit, {})

    assert run_until_idle(max_tasks=5) == 2
    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["message"] == "no instance for you"
    assert [r.status for r in attempts(wid, "never_runs")] == ["failed", "failed"]
