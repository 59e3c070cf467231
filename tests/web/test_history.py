"""An execution's history: what the engine did, what people did, and who."""

from __future__ import annotations

import pytest
from django.urls import reverse

import durable
from durable.models import OperatorAction, WorkflowExecution
from durable.testing import run_until_idle
from durable.web.history import history
from durable.web.timeline import duration_text
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db


def _texts(wid: str) -> list[tuple[str, str, str]]:
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    return [(e.kind, e.text, e.actor) for e in history(execution).entries]


def test_the_history_lists_the_runs_attempts_and_end_in_order() -> None:
    wid = durable.start(WebSteps)
    run_until_idle()
    entries = _texts(wid)
    assert entries[0] == ("run", "Created", "")
    assert entries[1] == ("run", "Started running", "")
    texts = [text for _, text, _ in entries]
    assert texts[2:5] == [
        "fetch: attempt 1 started on inline",  # the worker's id: inline, in tests
        f"fetch: attempt 1 completed after {_attempt_duration(wid, 'fetch')}",
        "crunch: attempt 1 started on inline",
    ]
    assert any(t.startswith("finish: attempt 1 completed after") for t in texts)
    assert entries[-1][:2] == ("run", "Completed")


def test_an_answered_input_and_a_dashboard_cancel_name_who_did_them(superuser, staff) -> None:
    answered = durable.start(WebReview)
    run_until_idle()
    client_for(superuser).post(
        reverse("durable:respond", args=[answered, _pending_pk(answered)]),
        {"input-amount": "3", "input-approved": "on"},
    )
    run_until_idle()
    entries = _texts(answered)
    assert ("input", "Asked for input 'review' (ask)", "") in entries
    assert ("input", "Input 'review' answered by root", "root") in entries

    cancelled = durable.start(WebReview)
    run_until_idle()
    client_for(staff).post(reverse("durable:cancel", args=[cancelled]))
    client_for(staff).post(reverse("durable:send-event", args=[answered]), {"event": "ping"})
    entries = _texts(cancelled)
    assert ("operator", "Cancelled: cancelled by staff", "staff") in entries
    assert entries[-1][1].startswith("Cancelled")  # the run's end, from the engine
    action = OperatorAction.objects.get(execution__workflow_id=cancelled)
    assert (action.action, action.actor.username) == ("cancelled", "staff")


def test_a_retry_and_an_event_are_in_the_history(staff) -> None:
    wid = durable.start(WebReview)
    run_until_idle()
    durable.cancel(wid, reason="by code")  # no person: no actor
    client_for(staff).post(reverse("durable:retry", args=[wid]), {"from_step": ""})
    run_until_idle()
    durable.send_event(wid, "nudge", {"n": 1})
    entries = _texts(wid)
    assert ("operator", "Retried from the failed step (it was cancelled)", "staff") in entries
    assert ("run", "Cancelled: by code", "") not in entries  # replaced by the retried run
    assert ("event", "Event 'nudge' received", "") in entries
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    event = next(e for e in history(execution).entries if e.kind == "event")
    assert event.detail == {"n": 1}


def test_the_page_renders_the_history_escaped(staff) -> None:
    wid = durable.start(WebReview)
    run_until_idle()
    durable.send_event(wid, "<img src=x onerror=alert(1)>", {"<b>": "</li><script>"})
    page = client_for(staff).get(reverse("durable:execution-detail", args=[wid]))
    body = page.content.decode()
    assert 'id="region-history"' in body
    assert "<img src=x" not in body
    assert "<script>" not in body
    assert "Event &#x27;&lt;img src=x onerror=alert(1)&gt;&#x27; received" in body


def _pending_pk(wid: str) -> int:
    return WorkflowExecution.objects.get(workflow_id=wid).pending_inputs.get().pk


def _attempt_duration(wid: str, step: str) -> str:
    row = WorkflowExecution.objects.get(workflow_id=wid).steps.get(step=step)
    return duration_text(row.duration_ms / 1000)
