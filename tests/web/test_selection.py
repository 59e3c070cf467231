"""Bulk actions on rows chosen on the list (beside "all matching")."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

import durable
from durable.models import OperatorAction, WorkflowExecution
from durable.testing import run_until_idle
from durable.web import bulk
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db


def _confirmed_ids(html: str) -> set[str]:
    return set(re.findall(r'<input type="hidden" name="workflow_id" value="([^"]+)"', html))


def _status(wid: str) -> str:
    return WorkflowExecution.objects.get(workflow_id=wid).status


def test_the_list_offers_a_checkbox_per_row_to_those_who_may_act(staff, viewer) -> None:
    wid = durable.start(WebSteps)
    html = client_for(staff).get(reverse("durable:execution-list")).content.decode()
    assert f'class="row-select" name="workflow_id" value="{wid}" form="selection-form"' in html
    assert 'data-action="cancel" formaction=' in html
    html = client_for(viewer).get(reverse("durable:execution-list")).content.decode()
    assert "row-select" not in html  # no action allowed: nothing to select for


def test_cancelling_the_selected_rows_takes_those_that_can_be_cancelled(staff) -> None:
    chosen = [durable.start(WebReview) for _ in range(2)]
    left_alone = durable.start(WebReview)
    done = durable.start(WebSteps)
    run_until_idle()
    client = client_for(staff)
    confirm = client.get(
        reverse("durable:bulk-confirm", args=["cancel"]),
        {"workflow_id": [*chosen, done], "status": "waiting"},
    )
    html = confirm.content.decode()
    assert _confirmed_ids(html) == set(chosen)  # the finished one is not eligible
    assert 'data-count="2">2</span> selected executions?' in html
    assert "1 of those selected cannot be cancelled" in html
    assert 'name="query" value="status=waiting"' in html  # back to the same list

    client.post(
        reverse("durable:bulk-perform", args=["cancel"]),
        {"workflow_id": chosen, "query": "status=waiting"},
    )
    assert [_status(w) for w in chosen] == ["cancelled", "cancelled"]
    assert _status(left_alone) == "waiting"
    assert _status(done) == "completed"
    assert OperatorAction.objects.filter(action="cancelled", actor=staff).count() == 2


def test_a_selection_larger_than_the_limit_is_refused(staff, monkeypatch) -> None:
    monkeypatch.setattr(bulk, "LIMIT", 2)
    ids = [durable.start(WebReview) for _ in range(3)]
    answer = client_for(staff).get(
        reverse("durable:bulk-confirm", args=["cancel"]), {"workflow_id": ids}
    )
    assert answer.status_code == 400
    assert "choose at most 2 executions" in answer.content.decode()
    assert {_status(w) for w in ids} == {"pending"}
