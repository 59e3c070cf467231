"""Searching executions by input, context, result and error; counts per status."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

import durable
from durable.models import WorkflowExecution
from durable.testing import run_until_idle
from durable.web.search import search
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs() -> dict[str, str]:
    ids = {
        "input": durable.start(WebSteps, {"label": "Zebra crossing", "customer": "C-42"}),
        "context": durable.start(WebReview, {"note": "x"}),
        "plain": durable.start(WebSteps, {"label": "nothing special"}),
    }
    run_until_idle()
    WorkflowExecution.objects.filter(workflow_id=ids["context"]).update(
        context={"reviewer": {"name": "Émilie Quartz"}}
    )
    failed = durable.start(WebSteps, {"label": "will fail"})
    WorkflowExecution.objects.filter(workflow_id=failed).update(
        status="failed", error={"type": "PaymentDeclined", "message": "card 4242 refused"}
    )
    done = WorkflowExecution.objects.get(workflow_id=ids["plain"])
    assert done.status == "completed"
    WorkflowExecution.objects.filter(pk=done.pk).update(result={"tracking": "TRK-777"})
    ids["error"] = failed
    return ids


def _found(text: str) -> set[str]:
    return set(search(WorkflowExecution.objects.all(), text).values_list("workflow_id", flat=True))


def test_text_is_found_in_input_context_result_and_error(runs: dict[str, str]) -> None:
    assert _found("zebra") == {runs["input"]}
    assert _found("Émilie") == {runs["context"]}
    assert _found("quartz") == {runs["context"]}
    assert _found("PaymentDeclined") == {runs["error"]}
    assert _found("refused") == {runs["error"]}
    assert _found("nothing-at-all-like-this") == set()
    if connection.vendor == "postgresql":
        assert _found("TRK-777") == {runs["plain"]}
        assert _found("crossing zebra") == {runs["input"]}  # every word, any order
    else:
        assert _found("TRK-7") == {runs["plain"]}  # LIKE: any part of the text


def test_key_value_finds_a_top_level_value(runs: dict[str, str]) -> None:
    assert _found("customer=C-42") == {runs["input"]}
    assert _found("customer: C-42") == {runs["input"]}
    assert _found("tracking=TRK-777") == {runs["plain"]}
    assert _found("customer=C-43") == set()


def test_a_search_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 200 characters"):
        search(WorkflowExecution.objects.all(), "x" * 201)


def test_the_list_searches_and_counts_each_status(runs: dict[str, str], viewer) -> None:
    client = client_for(viewer)
    page = client.get(reverse("durable:execution-list"), {"data": "zebra"})
    rows = page.content.decode()
    assert f'data-workflow-id="{runs["input"]}"' in rows
    assert f'data-workflow-id="{runs["context"]}"' not in rows

    page = client.get(reverse("durable:execution-list"), {"status": "completed"})
    counts = {c.status: c.count for c in page.context["status_counts"]}
    # Counted over the other filters: the chosen status does not hide the rest.
    assert counts == {"completed": 2, "waiting": 1, "failed": 1}
    assert page.context["status_total"] == 4
    chosen = [c.status for c in page.context["status_counts"] if c.chosen]
    assert chosen == ["completed"]
    html = page.content.decode()
    assert 'data-status="failed">failed <b>1</b></a>' in html
    assert "status=failed" in html

    page = client.get(reverse("durable:execution-list"), {"workflow_name": "web_review"})
    assert {c.status: c.count for c in page.context["status_counts"]} == {"waiting": 1}
