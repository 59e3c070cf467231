"""The web process's Prometheus view: staff or a bearer token; the backlog gauges."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

import durable
from durable.testing import run_workflow
from durable.web import prometheus
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.django_db
TOKEN = "s3cret-scraper-token"


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    # The view reuses its backlog for a few seconds: each test reads afresh.
    prometheus._registry = None
    with override_settings(DURABLE={**settings.DURABLE, "METRICS_TOKEN": TOKEN}):
        yield
    prometheus._registry = None


def gauges(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_a_scraper_with_the_bearer_token_reads_the_backlog(client: Client) -> None:
    run_workflow(wf.Napper, {"seconds": 3600})
    for i in range(3):
        durable.start(wf.Counted, {"n": i})

    response = client.get(
        reverse("durable:prometheus-metrics"), headers={"authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = gauges(response.content)
    assert samples[("durable_queue_ready_tasks", frozenset({("queue", "default")}))] == 3
    age = samples[("durable_queue_oldest_ready_age_seconds", frozenset({("queue", "default")}))]
    assert age >= 0
    assert samples[("durable_queue_ready_tasks", frozenset({("queue", "payments")}))] == 0
    waiting = ("durable_executions_waiting", frozenset({("workflow", "tm_napper")}))
    assert samples[waiting] == 1
    assert all(name.startswith("durable_") for name, _ in samples)


def test_staff_may_read_the_metrics(client: Client) -> None:
    client.force_login(User.objects.create_user("ops", is_staff=True))
    response = client.get(reverse("durable:prometheus-metrics"))
    assert response.status_code == 200
    assert b"durable_queue_ready_tasks" in response.content


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_anyone_else_is_refused(client: Client, authorization: str | None) -> None:
    client.force_login(User.objects.create_user("visitor"))  # logged in, not staff
    headers = {"authorization": authorization} if authorization else {}
    response = client.get(reverse("durable:prometheus-metrics"), headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="durable"'
    assert b"durable_" not in response.content


def test_without_a_token_setting_no_bearer_is_accepted(client: Client) -> None:
    with override_settings(DURABLE={**settings.DURABLE, "METRICS_TOKEN": None}):
        response = client.get(
            reverse("durable:prometheus-metrics"), headers={"authorization": "Bearer "}
        )
    assert response.status_code == 401
