"""Hostile strings in every stored field that reaches the round-2 pieces of the execution
page (graph node states, step list, waterfall, attempts' input and output, JSON viewers,
history) come out escaped, over HTTP and over the socket."""

from __future__ import annotations

import pytest
from django.urls import reverse

import durable
from durable.models import WorkflowExecution
from durable.testing import run_until_idle
from durable.web.history import history, record
from durable.web.live import Tracker
from durable.web.presenters import execution_view
from tests.web.conftest import client_for
from tests.web.workflows import HOSTILE

pytestmark = pytest.mark.django_db

UNESCAPED = ("<img src=x", "<script>alert", '"><img')


def test_hostile_strings_are_escaped_on_the_page_and_in_live_frames(superuser) -> None:
    wid = durable.start("web_hostile_pieces", {HOSTILE: HOSTILE})
    run_until_idle()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "failed"
    record(execution, "retried", superuser, from_step=HOSTILE, previous_status=HOSTILE)
    page = client_for(superuser).get(reverse("durable:execution-detail", args=[wid]))
    body = page.content.decode()
    view = execution_view(execution)
    frames = [Tracker().frame(view, history(execution, view.attempts))]
    tracker = Tracker()
    tracker.frame(view, history(execution, view.attempts))
    execution.steps.all().delete()  # every piece changes: deleted, then new ones appended
    view = execution_view(execution)
    frames.append(tracker.frame(view, history(execution, view.attempts)))
    for text in (body, *frames):
        for bad in UNESCAPED:
            assert bad not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert 'data-node-id="&quot;&gt;&lt;img' in body  # the graph's node state
    list_page = client_for(superuser).get(reverse("durable:execution-list"), {"data": HOSTILE})
    for bad in UNESCAPED:
        assert bad not in list_page.content.decode()
