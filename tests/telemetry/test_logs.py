"""What step logs carry: `extra` fields, the run's ids for JSON log shippers, the capture
level and the off switches."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from durable.models import StepExecution
from durable.testing import run_workflow
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.django_db

# What every LogRecord has; a JSON formatter (python-json-logger, structlog's ExtraAdder)
# adds whatever else a record carries.
STANDARD = {*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in STANDARD}
        return json.dumps({"message": record.getMessage(), **fields}, default=repr)


@pytest.fixture
def shipped() -> Iterator[io.StringIO]:
    """The JSON lines a log shipper would read from the `tm.steps` logger."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tm.steps")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def capture(**options: Any) -> override_settings:
    return override_settings(DURABLE={**settings.DURABLE, **options})


def stored(wid: str) -> list[dict[str, Any]]:
    (row,) = StepExecution.objects.filter(execution__workflow_id=wid)
    return list(row.logs)


def test_records_logged_in_a_step_carry_the_runs_ids_for_json_formatters(
    shipped: io.StringIO,
) -> None:
    wid = run_workflow(wf.Talks, {"amount": 12}).workflow_id
    logging.getLogger("tm.steps").warning("outside any step")

    first, outside = (json.loads(line) for line in shipped.getvalue().splitlines())
    assert first["message"] == "charged 12"
    assert first["durable_workflow_id"] == wid
    assert first["durable_step"] == "talk"
    assert first["durable_attempt"] == 1
    assert first["order_id"] == 7
    assert outside["message"] == "outside any step"
    assert not any(key.startswith("durable_") for key in outside)


def test_captured_lines_keep_their_extra_fields() -> None:
    wid = run_workflow(wf.Talks, {"amount": 12}).workflow_id

    warning = next(e for e in stored(wid) if e["stream"] == "logging")
    assert warning["message"] == "charged 12"
    # Not JSON (the card): kept as its repr. The run's own ids are not repeated.
    assert warning["extra"] == {"order_id": 7, "card": "<Card ending 4242>"}


def test_by_default_what_a_loggers_level_drops_is_not_captured() -> None:
    wid = run_workflow(wf.Talks, {"amount": 1}).workflow_id
    assert [e["message"] for e in stored(wid)] == ["charged 1", "printed line"]


def test_a_capture_level_captures_debug_lines_without_sending_them_to_handlers(
    shipped: io.StringIO,
) -> None:
    with capture(CAPTURE_LEVEL="DEBUG"):
        wid = run_workflow(wf.Talks, {"amount": 2}).workflow_id

    entries = stored(wid)
    assert [(e["level"], e["message"]) for e in entries] == [
        ("WARNING", "charged 2"),
        ("DEBUG", "a debug detail"),
        ("INFO", "printed line"),
    ]
    # The logger's level (WARNING) still decides what its handlers get.
    assert [json.loads(line)["message"] for line in shipped.getvalue().splitlines()] == [
        "charged 2"
    ]


def test_a_capture_level_above_a_record_leaves_it_out_of_the_log_only(
    shipped: io.StringIO,
) -> None:
    with capture(CAPTURE_LEVEL="ERROR"):
        wid = run_workflow(wf.Talks, {"amount": 3}).workflow_id
    assert [e["message"] for e in stored(wid)] == ["printed line"]
    assert len(shipped.getvalue().splitlines()) == 1


def test_capture_of_logs_can_be_turned_off_and_records_still_carry_the_ids(
    shipped: io.StringIO,
) -> None:
    with capture(CAPTURE_LOGS=False):
        wid = run_workflow(wf.Talks, {"amount": 4}).workflow_id
    assert [e["stream"] for e in stored(wid)] == ["stdout"]
    (line,) = shipped.getvalue().splitlines()
    assert json.loads(line)["durable_workflow_id"] == wid


def test_capture_of_printed_output_can_be_turned_off_and_leaves_sys_stdout_alone() -> None:
    with capture(CAPTURE_STDOUT=False):
        execution = run_workflow(wf.Talks, {"amount": 5})
    assert [e["stream"] for e in stored(execution.workflow_id)] == ["logging"]
    assert execution.context["stdout"] != "_StreamProxy"

    captured = run_workflow(wf.Talks, {"amount": 6})
    assert captured.context["stdout"] == "_StreamProxy"


def test_a_failure_is_stored_even_with_capture_off() -> None:
    with capture(CAPTURE_LOGS=False, CAPTURE_STDOUT=False):
        execution = run_workflow(wf.Declined, {})
    assert execution.status == "failed"
    (entry,) = stored(execution.workflow_id)
    assert entry["stream"] == "durable"
    assert "RuntimeError: declined by the bank" in entry["message"]
