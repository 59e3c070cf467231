"""Bulk actions on the filtered execution list: who may, what is confirmed, what is acted on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import durable
from durable.models import ExecutionStatus, WorkflowExecution
from durable.testing import run_until_idle
from durable.web import access, bulk
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db

CONFIRM = reverse("durable:bulk-confirm", args=["cancel"])
PERFORM = reverse("durable:bulk-perform", args=["cancel"])


def _waiting(n: int = 1) -> list[str]:
    ids = [durable.start(WebReview) for _ in range(n)]
    run_until_idle()
    return ids


def _status(wid: str) -> str:
    return WorkflowExecution.objects.get(workflow_id=wid).status


def _confirmed_ids(html: str) -> list[str]:
    return re.findall(r'name="workflow_id" value="([^"]+)"', html)


def test_anonymous_users_are_sent_to_the_login_page():
    (wid,) = _waiting()
    client = Client()
    for response in (
        client.get(CONFIRM),
        client.post(PERFORM, {"workflow_id": wid}),
        client.get(reverse("durable:bulk-dismiss")),
    ):
        assert response.status_code == 302
        assert "/durable/login/" in response["Location"]
    assert _status(wid) == "waiting"


@pytest.mark.parametrize("who", ["outsider", "viewer"])
def test_non_staff_and_staff_without_the_cancel_permission_are_refused(who, outsider, viewer):
    (wid,) = _waiting()
    client = client_for({"outsider": outsider, "viewer": viewer}[who])
    assert client.get(CONFIRM).status_code == 403
    assert client.post(PERFORM, {"workflow_id": wid}).status_code == 403
    assert _status(wid) == "waiting"
    if who == "viewer":  # may see the list, without the bulk link
        html = client.get(reverse("durable:execution-list")).content.decode()
        assert "bulk-link" not in html


def test_staff_without_the_respond_permission_may_cancel_in_bulk(staff):
    assert not staff.has_perm(access.RESPOND_PERMISSION)
    (wid,) = _waiting()
    client = client_for(staff)
    assert 'data-action="cancel"' in client.get(reverse("durable:execution-list")).content.decode()
    assert _confirmed_ids(client.get(CONFIRM).content.decode()) == [wid]
    assert client.post(PERFORM, {"workflow_id": wid}).status_code == 302
    assert _status(wid) == "cancelled"


def test_unknown_actions_are_not_found(superuser):
    client = client_for(superuser)
    assert client.get(reverse("durable:bulk-confirm", args=["explode"])).status_code == 404
    assert client.post(reverse("durable:bulk-perform", args=["explode"])).status_code == 404


def test_acting_needs_the_csrf_token(superuser):
    (wid,) = _waiting()
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    assert client.post(PERFORM, {"workflow_id": wid}).status_code == 403
    assert _status(wid) == "waiting"

    html = client.get(CONFIRM).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(PERFORM, {"workflow_id": wid, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert _status(wid) == "cancelled"


def test_the_confirmation_counts_the_unfinished_executions_matching_the_filters(superuser):
    reviews = _waiting(2)
    done = durable.start(WebSteps)
    run_until_idle()
    client = client_for(superuser)

    html = client.get(CONFIRM).content.decode()
    assert sorted(_confirmed_ids(html)) == sorted(reviews)  # the completed one cannot be
    assert 'data-count="2"' in html
    html = client.get(CONFIRM, {"q": reviews[0]}).content.decode()
    assert _confirmed_ids(html) == [reviews[0]]
    html = client.get(CONFIRM, {"status": "completed"}).content.decode()
    assert _confirmed_ids(html) == []
    assert "Nothing to cancel" in html
    # Pages are not filters: the confirmation covers every page.
    assert len(_confirmed_ids(client.get(CONFIRM, {"page": "2"}).content.decode())) == 2
    assert _status(done) == "completed"
    assert all(_status(w) == "waiting" for w in reviews)  # confirming changes nothing


def test_an_invalid_filter_is_refused_instead_of_widening_the_set(superuser):
    _waiting()
    response = client_for(superuser).get(CONFIRM, {"status": "bogus"})
    assert response.status_code == 400
    assert _confirmed_ids(response.content.decode()) == []
    assert "not valid" in response.content.decode()


def test_acting_takes_the_confirmed_ids_only_and_reports_those_that_changed(superuser):
    first, finished_since = _waiting(2)
    client = client_for(superuser)
    confirmed = _confirmed_ids(client.get(CONFIRM).content.decode())
    assert sorted(confirmed) == sorted([first, finished_since])

    # Between confirmation and action: one is cancelled elsewhere, a new one starts.
    durable.cancel(finished_since)
    (started_since,) = _waiting()
    response = client.post(
        PERFORM,
        {"workflow_id": [*confirmed, "no-such-id"], "query": "workflow_name=web_review&page=3"},
        follow=True,
    )

    assert _status(first) == "cancelled"
    assert _status(started_since) == "waiting"
    assert response.redirect_chain[-1][0] == (
        reverse("durable:execution-list") + "?workflow_name=web_review"
    )
    texts = [str(m) for m in response.context["messages"]]
    assert texts[0] == "Cancelled 1 execution; skipped 2 that changed since the confirmation."
    assert f"{finished_since} (now cancelled)" in texts[1]
    assert "no-such-id (no longer exists)" in texts[1]


def test_a_cancel_refused_by_the_engine_is_skipped_not_an_error(superuser):
    (wid,) = _waiting()

    def refuse(workflow_id: str, user: Any) -> None:
        # What the engine does when the execution finished after our status read.
        durable.cancel(workflow_id)
        durable.cancel(workflow_id)

    action = bulk.BulkAction(
        "cancel",
        "Cancel",
        "cancelled",
        access.CANCEL_PERMISSION,
        bulk.ACTIONS["cancel"].statuses,
        refuse,
    )
    report = bulk.perform(action, [wid, wid], superuser)
    assert report.done == []
    assert list(report.skipped) == [wid]  # duplicates are acted on once


def test_one_confirmation_covers_at_most_the_limit(superuser, monkeypatch):
    monkeypatch.setattr(bulk, "LIMIT", 1)
    older, newer = _waiting(2)
    client = client_for(superuser)
    html = client.get(CONFIRM).content.decode()
    assert _confirmed_ids(html) == [newer]
    assert "2 match; this takes the newest 1" in html

    response = client.post(PERFORM, {"workflow_id": [older, newer]}, follow=True)
    assert "Choose between 1 and 1 executions." in [str(m) for m in response.context["messages"]]
    assert _status(older) == _status(newer) == "waiting"


def test_htmx_gets_partials_and_a_refresh_of_the_list(superuser):
    (wid,) = _waiting()
    client = client_for(superuser)
    confirm = client.get(CONFIRM, headers={"HX-Request": "true"})
    assert "<html" not in confirm.content.decode()
    assert 'hx-post="' + PERFORM + '"' in confirm.content.decode()
    assert "HX-Request" in confirm["Vary"]

    response = client.post(PERFORM, {"workflow_id": wid}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Trigger"] == "durable-refresh"
    html = response.content.decode()
    assert 'id="messages" hx-swap-oob="true"' in html
    assert "Cancelled 1 execution." in html
    assert 'id="bulk" data-done="1" data-skipped="0"' in html
    assert _status(wid) == "cancelled"


def test_another_action_is_one_entry(superuser, monkeypatch):
    """How `retry` plugs in: an entry with its permission, statuses and function."""
    resumed: list[str] = []
    entry = bulk.BulkAction(
        name="note",
        verb="Note",
        done="noted",
        permission=access.CANCEL_PERMISSION,
        statuses=frozenset({ExecutionStatus.WAITING}),
        apply=lambda wid, user: resumed.append(wid),
    )
    monkeypatch.setitem(bulk.ACTIONS, "note", entry)
    (wid,) = _waiting()
    client = client_for(superuser)
    assert 'data-action="note"' in client.get(reverse("durable:execution-list")).content.decode()
    url = reverse("durable:bulk-confirm", args=["note"])
    assert _confirmed_ids(client.get(url).content.decode()) == [wid]
    response = client.post(
        reverse("durable:bulk-perform", args=["note"]), {"workflow_id": wid}, follow=True
    )
    assert resumed == [wid]
    assert "Noted 1 execution." in [str(m) for m in response.context["messages"]]


def test_keeping_them_closes_the_confirmation(superuser):
    client = client_for(superuser)
    url = reverse("durable:bulk-dismiss")
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.content.decode() == '<div id="bulk"></div>'
    assert "HX-Request" in response["Vary"]
    assert client.get(url)["Location"] == reverse("durable:execution-list")


def test_retry_in_bulk_reruns_the_cancelled_ones_from_their_interrupted_step(superuser):
    cancelled, still_waiting = _waiting(2)
    durable.cancel(cancelled)
    client = client_for(superuser)
    confirm = client.get(reverse("durable:bulk-confirm", args=["retry"]))
    assert _confirmed_ids(confirm.content.decode()) == [cancelled]  # only finished ones

    response = client.post(
        reverse("durable:bulk-perform", args=["retry"]),
        {"workflow_id": [cancelled, still_waiting]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert texts[0] == "Retried 1 execution; skipped 1 that changed since the confirmation."
    run_until_idle()
    assert _status(cancelled) == _status(still_waiting) == "waiting"
