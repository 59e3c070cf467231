"""Log capture beside sentry-sdk's logging integration (the real SDK, an in-memory
transport): both wrap `Logger.callHandlers`, and each must still get the records."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport

from durable.engine import logcapture
from durable.models import StepExecution
from durable.testing import run_workflow
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.django_db


class InMemoryTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


# Sentry wraps `callHandlers` once per process (its integrations' setup_once): kept here
# to put back in place for each test.
_sentry_wrapper: Any = None


@pytest.fixture
def sentry_first() -> Iterator[InMemoryTransport]:
    """Sentry initialised before Durable's capture is installed (a project's settings
    run before any step): Durable's wrapper must wrap Sentry's, not replace it."""
    global _sentry_wrapper
    pristine = logcapture._call_handlers
    installed = logging.Logger.callHandlers
    was_installed = logcapture._installed
    logging.Logger.callHandlers = _sentry_wrapper or pristine  # type: ignore[method-assign]
    logcapture._installed = False
    transport = InMemoryTransport()
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    _sentry_wrapper = logging.Logger.callHandlers
    assert _sentry_wrapper is not pristine, "sentry-sdk did not wrap Logger.callHandlers"
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: inactive, its logging wrapper calls straight through
        logging.Logger.callHandlers = installed  # type: ignore[method-assign]
        logcapture._call_handlers = pristine
        logcapture._installed = was_installed


def test_sentry_gets_a_steps_error_events_tagged_with_the_run_and_durable_keeps_the_lines(
    sentry_first: InMemoryTransport,
) -> None:
    execution = run_workflow(wf.Declined, {})
    assert execution.status == "failed"

    (event,) = [e for e in sentry_first.events if e.get("logger") == "tm.steps"]
    assert event["logentry"]["message"] == "card declined"
    assert event["level"] == "error"
    assert event["tags"]["durable.workflow_id"] == execution.workflow_id
    assert event["tags"]["durable.step"] == "charge"
    assert event["tags"]["durable.attempt"] == "1"
    assert event["extra"]["order_id"] == 7

    (row,) = StepExecution.objects.filter(execution=execution)
    logged, failure = row.logs
    assert (logged["message"], logged["level"], logged["extra"]) == (
        "card declined",
        "ERROR",
        {"order_id": 7},
    )
    assert "RuntimeError: declined by the bank" in failure["message"]


def test_events_sent_outside_a_step_are_not_tagged(sentry_first: InMemoryTransport) -> None:
    run_workflow(wf.Declined, {})
    logging.getLogger("tm.steps").error("after the run")

    (event,) = [e for e in sentry_first.events if e["logentry"]["message"] == "after the run"]
    assert "durable.workflow_id" not in event.get("tags", {})
