"""The operator commands: what they print, and clear non-zero failures on bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import durable
from durable.management.commands import durable_list
from durable.models import PendingInput, StepExecution, Task, WorkflowEvent, WorkflowExecution
from durable.testing import run_until_idle, run_workflow
from tests.observability import workflows as wf
from tests.support.workers import REPO, worker_env

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def everything() -> dict[str, list[dict]]:
    """Every row of Durable's execution tables, to prove a refused command changed nothing."""
    models = (WorkflowExecution, StepExecution, Task, PendingInput, WorkflowEvent)
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


@pytest.fixture
def unchanged():
    """Asserts, after the test, that nothing was written."""
    before = everything()
    yield
    assert everything() == before


def waiting_approval() -> str:
    wid = durable.start(wf.Approval, {})
    run_until_idle()
    assert durable.get_execution(wid).status == "waiting"
    return wid


# -- durable_start ------------------------------------------------------------------------


def test_start_prints_the_workflow_id_of_the_execution_it_started() -> None:
    when = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    wid = run(
        "durable_start",
        "obs_steps",
        "--input",
        '{"pause": 0, "who": "ops"}',
        "--queue",
        "high_priority",
        "--priority",
        "7",
        "--scheduled-at",
        when.isoformat(),
        "--idempotency-key",
        "cli-1",
    ).strip()

    execution = durable.get_execution(wid)
    assert execution.workflow_name == "obs_steps"
    assert execution.input == {"pause": 0, "who": "ops"}
    assert (execution.queue, execution.priority, execution.scheduled_at) == (
        "high_priority",
        7,
        when,
    )
    again = run("durable_start", "obs_steps", "--idempotency-key", "cli-1").strip()
    assert again == wid


def test_start_without_input_starts_with_an_empty_one() -> None:
    wid = run("durable_start", "obs_steps").strip()
    assert durable.get_execution(wid).input == {}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_flow"], "no workflow named 'no_such_flow'"),
        (["obs_steps", "--input", "{not json"], "--input is not valid JSON"),
        (["obs_steps", "--input", "[1, 2]"], "input must be a dict"),
        (["obs_steps", "--input", '{"n": NaN}'], "NaN"),
        (["obs_steps", "--queue", "nope"], "queue 'nope' is not configured"),
        (["obs_steps", "--scheduled-at", "tomorrow"], "--scheduled-at must be an ISO 8601"),
        (["obs_steps", "--priority", "high"], "invalid int value: 'high'"),
        (["obs_steps", "--idempotency-key", ""], "idempotency_key must be a string of 1"),
        (["obs_steps", "--input", "[" * 5000 + "]" * 5000], "--input nests too deeply"),
        (
            ["obs_steps", "--input", '{"a": ' + "[" * 500 + "]" * 500 + "}"],
            "--input nests too deeply",
        ),
        (["obs_steps", "--priority", str(2**40)], "priority must be between"),
    ],
)
def test_start_refuses_bad_arguments_and_starts_nothing(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        run("durable_start", *args)


# -- durable_list -------------------------------------------------------------------------


def test_list_prints_a_table_of_executions_newest_first() -> None:
    older = run_workflow(wf.Steps, {}).workflow_id
    newer = durable.start(wf.FailsOnce, {})

    lines = run("durable_list").splitlines()

    assert [h.strip() for h in lines[0].split("  ") if h] == list(durable_list.HEADERS)
    assert lines[1].split()[:3] == [newer, "obs_fails_once", "pending"]
    assert lines[2].split()[:4] == [older, "obs_steps", "completed", "second"]
    assert len(lines) == 3


def test_list_filters_like_the_api() -> None:
    done = run_workflow(wf.Steps, {}).workflow_id
    waiting = waiting_approval()
    pending = durable.start(wf.Steps, {})

    def ids(*args: str) -> list[str]:
        return [
            json.loads(line)["workflow_id"]
            for line in run("durable_list", "--json", *args).splitlines()
        ]

    assert ids() == [pending, waiting, done]
    assert ids("--workflow", "obs_steps") == [pending, done]
    assert ids("--status", "waiting") == [waiting]
    assert ids("--workflow", "obs_steps", "--status", "completed") == [done]
    assert ids("--current-step", "decide") == [waiting]
    assert ids("--limit", "2") == [pending, waiting]
    WorkflowExecution.objects.filter(workflow_id=done).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids("--since", yesterday) == [pending, waiting]
    assert ids("--until", yesterday) == [done]
    assert ids("--since", "2000-01-01", "--until", "2000-12-31") == []


def test_list_json_prints_one_object_per_execution() -> None:
    wid = run_workflow(wf.Steps, {}).workflow_id

    (line,) = run("durable_list", "--json").splitlines()
    record = json.loads(line)

    assert record["workflow_id"] == wid
    assert record["workflow_name"] == "obs_steps"
    assert record["status"] == "completed"
    assert record["current_step"] == "second"
    assert datetime.fromisoformat(record["completed_at"]) == durable.get_execution(wid).completed_at


def test_list_says_so_when_nothing_matches() -> None:
    assert run("durable_list").strip() == "No executions match."
    assert run("durable_list", "--json") == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workflow", "no_such_flow"], "no workflow named 'no_such_flow'"),
        (["--status", "sleeping"], "unknown status 'sleeping'"),
        (["--since", "last week"], "--since must be an ISO 8601"),
        (["--until", "2024-13-01"], "--until must be an ISO 8601"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--limit", "ten"], "invalid int value: 'ten'"),
    ],
)
def test_list_refuses_bad_filters(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        run("durable_list", *args)


# -- durable_status -----------------------------------------------------------------------


def test_status_shows_the_execution_then_every_step_attempt() -> None:
    wid = run_workflow(wf.FailsOnce, {}).workflow_id

    output = run("durable_status", wid)

    assert f"workflow id   {wid}" in output
    assert "workflow      obs_fails_once (tests.observability.workflows)" in output
    assert "status        completed" in output
    table = output.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == [
        "STEP",
        "SCOPE",
        "ATTEMPT",
        "STATUS",
        "STARTED",
        "DURATION",
        "ERROR",
    ]
    assert table[1].split()[:4] == ["flaky", "-", "1", "failed"]
    assert table[1].endswith("ValueError: boom on attempt 1")
    assert table[2].split()[:4] == ["flaky", "-", "2", "completed"]
    assert "attempt 1 starting" not in output


def test_status_with_logs_prints_the_lines_of_every_attempt() -> None:
    wid = run_workflow(wf.FailsOnce, {}).workflow_id

    output = run("durable_status", wid, "--logs")

    first = output.index("== flaky attempt 1 (failed) ==")
    second = output.index("== flaky attempt 2 (completed) ==")
    assert first < output.index("INFO [stdout] attempt 1 starting") < second
    assert first < output.index("ValueError: boom on attempt 1", first) < second
    assert second < output.index("INFO [stdout] attempt 2 done")


def test_status_of_an_execution_that_has_not_run_says_so() -> None:
    wid = durable.start(wf.Steps, {})
    output = run("durable_status", wid)
    assert "status        pending" in output
    assert output.rstrip().endswith("No step has run yet.")


def test_status_json_has_the_execution_its_attempts_and_with_logs_their_lines() -> None:
    wid = run_workflow(wf.FailsOnce, {}).workflow_id

    record = json.loads(run("durable_status", wid, "--json"))
    with_logs = json.loads(run("durable_status", wid, "--json", "--logs"))

    assert (record["workflow_id"], record["status"], record["result"]) == (wid, "completed", "ok")
    assert [(s["step"], s["attempt"], s["status"]) for s in record["steps"]] == [
        ("flaky", 1, "failed"),
        ("flaky", 2, "completed"),
    ]
    assert record["steps"][0]["error"]["message"] == "boom on attempt 1"
    assert "logs" not in record["steps"][0]
    assert [e["message"] for e in with_logs["steps"][1]["logs"]] == [
        "attempt 2 starting",
        "attempt 2 done",
    ]


def test_status_of_an_unknown_id_fails() -> None:
    with pytest.raises(CommandError, match="no execution with id 'nope'"):
        run("durable_status", "nope")


# -- durable_cancel -----------------------------------------------------------------------


def test_cancel_cancels_with_the_reason_given() -> None:
    wid = waiting_approval()

    assert run("durable_cancel", wid, "--reason", "changed my mind").strip() == f"cancelled {wid}"

    execution = durable.get_execution(wid)
    assert execution.status == "cancelled"
    assert execution.error["reason"] == "changed my mind"


def test_cancel_refuses_unknown_ids_and_finished_executions() -> None:
    with pytest.raises(CommandError, match="no execution with id 'nope'"):
        run("durable_cancel", "nope")
    wid = run_workflow(wf.Steps, {}).workflow_id
    with pytest.raises(CommandError, match="already completed"):
        run("durable_cancel", wid)
    assert durable.get_execution(wid).status == "completed"


# -- durable_provide_input and durable_send_event ----------------------------------------


def test_provide_input_then_send_event_drive_a_waiting_workflow_to_its_end() -> None:
    wid = waiting_approval()
    user = get_user_model().objects.create_user("ops", password="x")

    output = run(
        "durable_provide_input",
        wid,
        "decision",
        "--response",
        '{"approved": true, "note": "ok"}',
        "--user",
        "ops",
    )
    assert output.strip() == f"provided 'decision' to {wid}"
    assert PendingInput.objects.get(execution__workflow_id=wid).responded_by == user
    run_until_idle()

    output = run("durable_send_event", wid, "shipped", "--payload", '{"carrier": "ups"}')
    assert output.strip() == f"sent 'shipped' to {wid}"
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["decision"] == {"approved": True, "note": "ok"}
    assert execution.context["shipped"] == {"carrier": "ups"}


def test_send_event_without_payload_sends_null() -> None:
    wid = waiting_approval()
    run("durable_send_event", wid, "early")
    assert list(durable.get_execution(wid).events.values_list("name", "payload")) == [
        ("early", None)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "shipped"], "no execution with id 'nope'"),
        (["WID", "shipped", "--payload", "{oops"], "--payload is not valid JSON"),
        (["WID", ""], "event name must be a string of 1 to 200 characters"),
        (["WID", "shipped", "--payload", "[" * 5000 + "]" * 5000], "--payload nests too deeply"),
        (["x" * 10_000, "shipped"], "workflow_id must be 1 to 64 characters"),
        (["DONE", "shipped"], "execution .* is completed"),
    ],
)
def test_send_event_refuses_bad_arguments_and_sends_nothing(args, message) -> None:
    ids = {"WID": waiting_approval(), "DONE": run_workflow(wf.Steps, {}).workflow_id}
    before = everything()
    with pytest.raises(CommandError, match=message):
        run("durable_send_event", *[ids.get(arg, arg) for arg in args])
    assert everything() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "decision", "--response", "{}"], "no execution with id 'nope'"),
        (["WID", "decision", "--response", "yes"], "--response is not valid JSON"),
        (["WID", "colour", "--response", "{}"], "not waiting for input 'colour'"),
        (
            ["WID", "decision", "--response", '{"approved": true}', "--user", "ghost"],
            "no user with username 'ghost'",
        ),
        (["DONE", "decision", "--response", "{}"], "execution .* is completed"),
    ],
)
def test_provide_input_refuses_bad_arguments_and_changes_nothing(args, message) -> None:
    ids = {"WID": waiting_approval(), "DONE": run_workflow(wf.Steps, {}).workflow_id}
    before = everything()
    with pytest.raises(CommandError, match=message):
        run("durable_provide_input", *[ids.get(arg, arg) for arg in args])
    assert everything() == before


def test_provide_input_prints_each_field_error_of_an_invalid_response() -> None:
    wid = waiting_approval()
    before = everything()
    with pytest.raises(CommandError) as raised:
        run("durable_provide_input", wid, "decision", "--response", '{"note": "far too long"}')
    message = str(raised.value)
    assert message.startswith("invalid value:")
    assert "\n  approved: " in message
    assert "\n  note: at most 5 characters" in message
    assert everything() == before


def test_provide_input_twice_is_refused_the_second_time() -> None:
    wid = waiting_approval()
    run("durable_provide_input", wid, "decision", "--response", '{"approved": false}')
    with pytest.raises(CommandError, match="already completed"):
        run("durable_provide_input", wid, "decision", "--response", '{"approved": true}')


# -- real processes -----------------------------------------------------------------------


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=worker_env(workflow_modules="tests.observability.workflows"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_commands_run_as_processes_exit_zero_on_success_and_non_zero_on_errors() -> None:
    started = manage("durable_start", "obs_steps", "--input", '{"pause": 0}')
    assert started.returncode == 0, started.stderr
    wid = started.stdout.strip()
    assert durable.get_execution(wid).status == "pending"

    for args, message in [
        (("durable_status", "no-such-id"), "no execution with id 'no-such-id'"),
        (("durable_start", "obs_steps", "--input", "{"), "--input is not valid JSON"),
        (("durable_list", "--limit", "ten"), "invalid int value"),
    ]:
        failed = manage(*args)
        assert failed.returncode != 0, (args, failed.stdout)
        assert message in failed.stderr, (args, failed.stderr)
