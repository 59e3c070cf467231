"""Hostile input to the dashboard and the admin: bounded parsing, no 500 from any URL, and
nothing stored comes out unescaped."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

import durable
import durable.urls
from durable.flow.inputs import validate_response
from durable.models import (
    PendingInput,
    ScheduledWorkflow,
    StepExecution,
    WorkflowExecution,
)
from durable.testing import run_until_idle
from durable.web.consumers import ExecutionConsumer, ExecutionListConsumer
from durable.web.forms import PendingInputForm, schema_of
from durable.web.live import Tracker
from tests.web.conftest import client_for
from tests.web.fault_workflows import HOSTILE
from tests.web.workflows import WebReview

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
LONG = "x" * 10_000
TOO_DEEP = "[" * 5_000 + "]" * 5_000  # beyond the JSON parser's recursion limit
DEEP = "[" * 500 + "]" * 500  # parses, but nests deeper than storage allows


@pytest.fixture
def waiting() -> WorkflowExecution:
    wid = durable.start(WebReview)
    run_until_idle()
    return WorkflowExecution.objects.get(workflow_id=wid)


# -- bounded number parsing -------------------------------------------------------------


def test_a_number_answer_of_1e1000000_is_refused_in_under_50_ms(waiting, superuser):
    pending = PendingInput.objects.get()
    data = {"input-amount": "1e1000000"}
    began = time.perf_counter()
    form = PendingInputForm(pending, data)
    assert form.is_valid()
    with pytest.raises(ValidationError) as raised:
        validate_response(schema_of(pending), form.response())
    elapsed = time.perf_counter() - began
    assert elapsed < 0.050, f"took {elapsed * 1000:.1f} ms"
    assert "out of range" in raised.value.message_dict["amount"][0]
    # The same answer posted to the dashboard and to the admin: a 4xx/200 form with the
    # error, nothing recorded.
    url = reverse("durable:respond", args=[waiting.workflow_id, pending.pk])
    client = client_for(superuser)
    for number in ("1e1000000", "1e5000", "-1e-400"):
        response = client.post(url, {"input-amount": number})
        assert response.status_code == 400
        assert "out of range" in response.content.decode()
    admin = client.post(
        reverse("admin:durable_pendinginput_change", args=[pending.pk]),
        {"_respond": "Respond", "input-amount": "1e5000"},
    )
    assert admin.status_code == 200
    assert "out of range" in admin.content.decode()
    assert PendingInput.objects.get().status == "pending"


# -- no 500 from any dashboard URL ------------------------------------------------------

BAD_PATH_VALUES = {
    "str": [quote(NUL), LONG, "%ED%A0%80", quote("<script>")],
    "int": ["9" * 30, "0"],
}


class _Good(dict[str, str]):
    """Valid values of the URLs' parameters; a parameter this test does not know (a new
    page's) gets the default queue's name, which at least resolves the URL."""

    def __missing__(self, key: str) -> str:
        return "default"


def _good_values(execution: WorkflowExecution) -> dict[str, str]:
    return _Good(
        workflow_id=execution.workflow_id,
        region="inputs",
        action="cancel",
        input_pk=str(PendingInput.objects.get(execution=execution).pk),
    )


def _paths(execution: WorkflowExecution) -> Iterator[str]:
    """Every dashboard URL with each of its path parameters made bad in turn."""
    good = _good_values(execution)
    for pattern in durable.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        converters = re.findall(r"<(\w+):(\w+)>", route)
        if not converters:
            yield "/durable/" + route
            continue
        for kind, name in converters:
            for bad in BAD_PATH_VALUES[kind]:
                path = route
                for other_kind, other in converters:
                    value = bad if other == name else good[other]
                    path = path.replace(f"<{other_kind}:{other}>", value)
                yield "/durable/" + path


BAD_QUERIES: list[dict[str, str]] = [
    {"status": NUL},
    {"q": NUL},
    {"q": LONG},
    {"queue": LONG},
    {"workflow_name": NUL},
    {"created_after": NUL},
    {"created_before": "9" * 5000},
    {"page": NUL},
    {"page": "9" * 5000},
]


def _bad_posts(execution: WorkflowExecution) -> list[tuple[str, dict[str, Any]]]:
    wid = execution.workflow_id
    pending = PendingInput.objects.get(execution=execution)
    respond = reverse("durable:respond", args=[wid, pending.pk])
    event = reverse("durable:send-event", args=[wid])
    start = reverse("durable:start-workflow")
    perform = reverse("durable:bulk-perform", args=["cancel"])
    return [
        (start, {"workflow": "web_steps", "input": TOO_DEEP}),
        (start, {"workflow": "web_steps", "input": '{"a": ' + DEEP + "}"}),
        (start, {"workflow": "web_steps", "input": '{"a": "\\u0000"}'}),
        (start, {"workflow": "web_steps", "input": '{"a": 1' + "0" * 5000 + "}"}),
        (start, {"workflow": NUL, "input": "{}"}),
        (event, {"event": NUL, "payload": "{}"}),
        (event, {"event": "go", "payload": TOO_DEEP}),
        (event, {"event": "go", "payload": DEEP}),
        (event, {"event": "go", "payload": '"\\ud800"'}),
        (respond, {"input-amount": "1e5000"}),
        (respond, {"input-amount": "1e1000000"}),
        (respond, {"input-amount": NUL}),
        (respond, {"input-amount": "1", "input-note": NUL}),
        (respond, {"input-amount": "1", "input-size": NUL}),
        (respond, {"input-amount": "1", "input-size": TOO_DEEP}),
        (perform, {"workflow_id": [NUL]}),
        (perform, {"workflow_id": [LONG]}),
        (perform, {"workflow_id": [wid, NUL]}),
        (reverse("durable:retry", args=[wid]), {"from_step": NUL}),
        (reverse("durable:login"), {"username": NUL, "password": NUL}),
        (reverse("durable:login"), {"username": LONG, "password": "x", "next": NUL}),
    ]


def _admin_urls(execution: WorkflowExecution) -> list[str]:
    urls = []
    for model in ("workflowexecution", "pendinginput", "scheduledworkflow", "queuestate"):
        changelist = reverse(f"admin:durable_{model}_changelist")
        urls += [
            f"{changelist}?q={quote(NUL)}",
            f"{changelist}?q={LONG}",
            f"{changelist}?status={quote(NUL)}",
            f"{changelist}{quote(NUL)}/change/",
            f"{changelist}{LONG}/change/",
            f"{changelist}{'9' * 30}/change/",
            f"{changelist}{quote(NUL)}/delete/",
        ]
    return urls


def test_no_dashboard_url_answers_500_to_bad_input(waiting, superuser):
    # Exceptions reach the test (the client re-raises them), so a 500 fails with its cause.
    client = client_for(superuser)
    statuses: dict[str, int] = {}
    for path in _paths(waiting):
        statuses[f"GET {path[:80]}"] = client.get(path).status_code
        statuses[f"POST {path[:80]}"] = client.post(path, {}).status_code
    for query in BAD_QUERIES:
        for name in ("execution-list", "metrics"):
            response = client.get(reverse(f"durable:{name}"), query)
            statuses[f"GET {name} {query}"[:120]] = response.status_code
        url = reverse("durable:bulk-confirm", args=["cancel"])
        statuses[f"GET bulk {query}"[:120]] = client.get(url, query).status_code
    for url, data in _bad_posts(waiting):
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.post(url, data, **extra)
            statuses[f"POST {url} {str(data)[:60]} {extra}"] = response.status_code
    for url in _admin_urls(waiting):
        statuses[f"GET {url[:80]}"] = client.get(url).status_code
    assert {key: code for key, code in statuses.items() if code >= 500} == {}
    assert len(statuses) > 150
    # The execution is where it was: nothing bad got through.
    assert durable.get_execution(waiting.workflow_id).status == "waiting"
    assert PendingInput.objects.get().status == "pending"


@pytest.mark.parametrize("bad", [quote(NUL), LONG, "%ED%A0%80"])
def test_an_execution_url_with_an_impossible_id_is_a_404_that_says_why(superuser, bad):
    response = client_for(superuser).get(f"/durable/executions/{bad}/")
    assert response.status_code == 404


def test_a_bulk_action_with_an_impossible_id_does_nothing(waiting, superuser):
    response = client_for(superuser).post(
        reverse("durable:bulk-perform", args=["cancel"]),
        {"workflow_id": [waiting.workflow_id, NUL]},
        follow=True,
    )
    assert "not workflow ids; nothing was done" in response.content.decode()
    assert durable.get_execution(waiting.workflow_id).status == "waiting"


@pytest.mark.parametrize("payload", [TOO_DEEP, DEEP])
def test_deep_json_in_the_start_form_is_refused_with_a_message(superuser, payload):
    response = client_for(superuser).post(
        reverse("durable:start-workflow"),
        {"workflow": "web_steps", "input": '{"a": ' + payload + "}"},
    )
    assert response.status_code == 400
    assert "nest" in response.content.decode()
    assert not WorkflowExecution.objects.exists()


# -- hostile strings in every stored field ----------------------------------------------


def _hostile_rows() -> list[WorkflowExecution]:
    """Executions with HOSTILE in every stored field that reaches a page: real runs of a
    workflow that stores it everywhere it can, and forged rows for the fields the engine
    keeps to its own values."""
    durable.start("web_fault_hostile", {"fail": True, HOSTILE: HOSTILE})
    failed = durable.start("web_fault_hostile", {"fail": True})
    completed = durable.start("web_fault_hostile", {})
    durable.start("web_hostile_choice")
    cancelled = durable.start("web_hostile_choice")
    run_until_idle()
    for wid in (failed, completed):
        durable.provide_input(
            wid, f"input {HOSTILE}", {"amount": 1, "kind": HOSTILE, "tags": [HOSTILE]}
        )
    durable.cancel(cancelled, HOSTILE)
    run_until_idle()
    now = timezone.now()
    forged = WorkflowExecution.objects.create(
        workflow_id=HOSTILE.replace("/", "")[:64],  # a path segment in the dashboard's URLs
        workflow_module=HOSTILE,
        workflow_name=HOSTILE,
        status="failed",
        queue=HOSTILE[:100],
        input={HOSTILE: HOSTILE},
        context={HOSTILE: [HOSTILE]},
        current_step=HOSTILE,
        error={"type": HOSTILE, "message": HOSTILE, "traceback": HOSTILE},
        result={HOSTILE: HOSTILE},
        idempotency_key=HOSTILE,
        started_at=now,
        completed_at=now,
        duration_ms=5,
    )
    StepExecution.objects.create(
        execution=forged,
        step=HOSTILE,
        scope_key=HOSTILE,
        attempt=1,
        status="failed",
        started_at=now,
        completed_at=now,
        duration_ms=3,
        error={"type": HOSTILE, "message": HOSTILE},
        logs=[
            {
                "timestamp": HOSTILE,
                "level": HOSTILE,
                "logger": HOSTILE,
                "stream": HOSTILE,
                "message": HOSTILE,
            }
        ],
        progress={"done": 1, "total": 2},
        worker_id=HOSTILE,
    )
    PendingInput.objects.create(
        execution=forged,
        input_name=HOSTILE,
        step_name=HOSTILE,
        scope_key=HOSTILE,
        type="form",
        prompt=HOSTILE,
        fields=[
            {
                "name": HOSTILE,
                "type": "text",
                "label": HOSTILE,
                "help_text": HOSTILE,
                "required": True,
            },
            {"name": "choose", "type": "select", "options": [HOSTILE], "required": False},
        ],
        timeout_at=now,
    )
    ScheduledWorkflow.objects.create(
        name=HOSTILE, workflow_name=HOSTILE, cron_expression=HOSTILE, input={HOSTILE: HOSTILE}
    )
    return list(WorkflowExecution.objects.all())


def _dashboard_pages(client: Client, executions: list[WorkflowExecution]) -> dict[str, str]:
    pages = {}
    for query in ({}, {"status": HOSTILE}, {"q": HOSTILE[:60]}, {"workflow_name": HOSTILE}):
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(reverse("durable:execution-list"), query, **extra)
            pages[f"list {query} {extra}"] = response.content.decode()
    # Every page without parameters (metrics, and any page added since), and every page
    # of an execution named by its id alone.
    for pattern in durable.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        params = re.findall(r"<\w+:(\w+)>", route)
        if not params:
            pages[route] = client.get(f"/durable/{route}").content.decode()
        elif params == ["workflow_id"]:
            for execution in executions:
                path = route.replace("<str:workflow_id>", quote(execution.workflow_id))
                pages[path] = client.get(f"/durable/{path}").content.decode()
    for action in ("cancel", "retry"):
        url = reverse("durable:bulk-confirm", args=[action])
        pages[f"bulk {action}"] = client.get(url).content.decode()
    for execution in executions:
        wid = execution.workflow_id
        pages[f"detail {wid}"] = client.get(
            reverse("durable:execution-detail", args=[wid])
        ).content.decode()
        for region in ("inputs", "controls"):
            url = reverse("durable:execution-region", args=[wid, region])
            pages[f"{region} {wid}"] = client.get(url).content.decode()
        for pending in PendingInput.objects.filter(execution=execution):
            # A refused answer renders the form again, with the values given.
            url = reverse("durable:respond", args=[wid, pending.pk])
            posted = {f"input-{f['name']}": HOSTILE for f in pending.fields or []}
            pages[f"respond {wid}"] = client.post(
                url, {**posted, "input-choice": HOSTILE}
            ).content.decode()
    return pages


def _admin_pages(client: Client) -> dict[str, str]:
    pages = {}
    for model, rows in (
        ("workflowexecution", WorkflowExecution.objects.all()),
        ("pendinginput", PendingInput.objects.all()),
        ("scheduledworkflow", ScheduledWorkflow.objects.all()),
    ):
        changelist = reverse(f"admin:durable_{model}_changelist")
        pages[model] = client.get(changelist).content.decode()
        pages[f"{model} search"] = client.get(changelist, {"q": HOSTILE}).content.decode()
        for row in rows:
            url = reverse(f"admin:durable_{model}_change", args=[row.pk])
            pages[f"{model} {row.pk}"] = client.get(url).content.decode()
    return pages


def _socket_frames(executions: list[WorkflowExecution]) -> dict[str, str]:
    """What the live consumers send for these executions (their changes(), run directly)."""
    frames = {}
    for execution in executions:
        consumer = ExecutionConsumer()
        consumer.scope = {"user": None}  # no codec: payloads are shown to everyone
        consumer.workflow_id = execution.workflow_id
        consumer._sent, consumer._first = {}, False
        consumer._tracker = Tracker("")
        frames[f"socket {execution.workflow_id}"] = consumer.changes()[0]
    listing = ExecutionListConsumer()
    listing._sent = {}
    listing._cursor = listing._newest = timezone.now() - timedelta(hours=1)
    listing._shown = frozenset(e.pk for e in executions)
    listing._fresh = listing._shown
    frames["socket list"] = listing.changes()[0]
    return frames


# Any of these in a page means HOSTILE (or part of it) reached it unescaped, in text or by
# breaking out of an attribute.
UNESCAPED = ("<script>alert", "<img src=x", "<svg onload")


def test_every_page_escapes_hostile_stored_strings(superuser):
    executions = _hostile_rows()
    assert {e.status for e in executions} >= {"waiting", "failed", "completed", "cancelled"}
    client = client_for(superuser)
    pages = {
        **_dashboard_pages(client, executions),
        **_admin_pages(client),
        **_socket_frames(executions),
    }
    shown = 0
    for name, html in pages.items():
        assert not [marker for marker in UNESCAPED if marker in html], name
        shown += html.count("&lt;script&gt;alert(1)")
    # The strings were there to escape: on the detail pages, the graphs, forms, logs...
    assert shown > 100
    graph_pages = [html for name, html in pages.items() if "<svg" in html and "detail" in name]
    assert any("&lt;script&gt;" in html.split("<svg", 1)[1] for html in graph_pages)
    # The help text is escaped once (not shown raw, not double-escaped).
    help_text = re.compile(r'class="helptext"[^>]*>&lt;script&gt;alert\(1\)&lt;/script&gt;')
    assert any(help_text.search(html) for html in pages.values())
    assert not any("&amp;lt;script" in html for html in pages.values())
