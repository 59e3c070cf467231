"""The dashboard says where a retry of a compensated run starts, and refuses a start that
would leave compensated work undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

import durable
from durable.testing import run_until_idle
from tests.semantics_api.workflows import TripSaga

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client() -> Client:
    User.objects.create_superuser("root", password="pw")
    client = Client()
    client.login(username="root", password="pw")
    return client


def compensated_trip(tmp_path: Path) -> str:
    decline = tmp_path / "decline"
    decline.touch()
    wid = durable.start(TripSaga, {"ledger": str(tmp_path / "l.txt"), "decline": str(decline)})
    run_until_idle()
    assert durable.get_execution(wid).status == "compensated"
    decline.unlink()
    return wid


def test_the_retry_form_of_a_compensated_run_starts_at_its_first_compensated_step(
    root_client, tmp_path
):
    wid = compensated_trip(tmp_path)
    page = root_client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert '<option value="">the first compensated step (book_flight)</option>' in page
    assert '<option value="book_flight">' in page
    # Later starts would leave the cancelled bookings cancelled: not offered.
    assert '<option value="book_hotel">' not in page
    assert '<option value="charge">' not in page

    response = root_client.post(reverse("durable:retry", args=[wid]), {}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Retrying from the first compensated step (book_flight)."]
    run_until_idle()
    assert durable.get_execution(wid).status == "completed"


def test_a_posted_retry_from_a_later_step_is_refused_naming_fork(root_client, tmp_path):
    wid = compensated_trip(tmp_path)
    response = root_client.post(
        reverse("durable:retry", args=[wid]), {"from_step": "charge"}, follow=True
    )
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Could not retry:")
    assert "durable.fork" in message
    assert durable.get_execution(wid).status == "compensated"


def test_retry_all_matching_says_where_compensated_runs_start(root_client, tmp_path):
    wid = compensated_trip(tmp_path)
    confirm = root_client.get(reverse("durable:bulk-confirm", args=["retry"])).content.decode()
    assert wid in confirm
    assert "Compensated executions re-run from their first compensated step" in confirm
    response = root_client.post(
        reverse("durable:bulk-perform", args=["retry"]), {"workflow_id": [wid]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Retried 1 execution."]
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert [s for s in execution.steps.order_by("id").values_list("step", flat=True)][-3:] == [
        "book_flight",
        "book_hotel",
        "charge",
    ]


def test_a_fork_and_its_source_link_to_each_other_on_their_pages(root_client, tmp_path):
    wid = compensated_trip(tmp_path)
    forked = durable.fork(wid, from_step="charge")
    fork_page = root_client.get(reverse("durable:execution-detail", args=[forked])).content
    source_page = root_client.get(reverse("durable:execution-detail", args=[wid])).content
    assert reverse("durable:execution-detail", args=[wid]) in fork_page.decode()
    assert "Forked from" in fork_page.decode()
    assert "at charge" in fork_page.decode()
    assert reverse("durable:execution-detail", args=[forked]) in source_page.decode()
    assert '<ul class="forks">' in source_page.decode()
