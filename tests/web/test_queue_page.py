"""The queue page: depth, age of the oldest ready task, running, concurrency, workers,
and pause / resume behind the durable.operate permission."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

import durable
from durable.models import QueueState, Task, TaskStatus, WorkerState, WorkflowExecution
from durable.web.queue_views import queue_rows
from tests.web.conftest import client_for
from tests.web.workflows import WebSteps

pytestmark = pytest.mark.django_db


def _tasks(queue: str, **states: int) -> None:
    """Tasks of fresh executions in `queue`: states due, running, later, waiting."""
    now = timezone.now()
    kinds = {
        "due": (TaskStatus.READY, now - timedelta(minutes=3)),
        "running": (TaskStatus.CLAIMED, now - timedelta(minutes=1)),
        "later": (TaskStatus.READY, now + timedelta(hours=1)),
        "waiting": (TaskStatus.WAITING, now + timedelta(days=1)),
    }
    for kind, count in states.items():
        status, run_at = kinds[kind]
        for _ in range(count):
            execution = WorkflowExecution.objects.get(workflow_id=durable.start(WebSteps))
            execution.tasks.all().delete()
            Task.objects.create(
                execution=execution, step="fetch", queue=queue, status=status, run_at=run_at
            )


def test_each_queue_shows_its_depth_oldest_ready_running_and_concurrency() -> None:
    _tasks("payments", due=2, running=1, later=1, waiting=3)
    _tasks("ghost", due=1)  # a queue no setting names
    now = timezone.now()
    WorkerState.objects.create(
        worker_id="h:1:a", queues={"payments": 2, "default": 8}, started_at=now, seen_at=now
    )
    WorkerState.objects.create(
        worker_id="h:2:b",
        queues={"payments": 2},
        started_at=now,
        seen_at=now - timedelta(hours=1),  # gone: not counted
    )
    rows = {row.name: row for row in queue_rows()}
    payments = rows["payments"]
    assert (payments.due, payments.running, payments.later, payments.waiting) == (2, 1, 1, 3)
    assert payments.oldest_age == "3 min"
    assert (payments.concurrency, payments.workers, payments.slots) == (2, 1, 2)
    assert rows["default"].due == 0
    assert rows["default"].oldest_age == ""
    assert not rows["ghost"].configured
    assert list(rows)[:3] == ["default", "payments", "high_priority"]


def test_staff_without_the_permission_see_the_page_but_cannot_pause(viewer) -> None:
    client = client_for(viewer)
    page = client.get(reverse("durable:queues"))
    assert page.status_code == 200
    assert 'data-queue="payments"' in page.content.decode()
    assert "Pause</button>" not in page.content.decode()
    answer = client.post(reverse("durable:queue-control", args=["payments", "pause"]))
    assert answer.status_code == 403
    assert not QueueState.objects.filter(paused=True).exists()


def test_the_operate_permission_pauses_and_resumes(viewer) -> None:
    content_type = ContentType.objects.get_for_model(WorkflowExecution)
    permission, _ = Permission.objects.get_or_create(
        codename="operate", content_type=content_type, defaults={"name": "Can operate"}
    )
    viewer.user_permissions.add(permission)
    client = client_for(viewer)
    assert "Pause</button>" in client.get(reverse("durable:queues")).content.decode()

    answer = client.post(
        reverse("durable:queue-control", args=["payments", "pause"]), HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200
    assert 'data-queue="payments" data-paused="true"' in answer.content.decode()
    assert "Paused queue &#x27;payments&#x27;." in answer.content.decode()
    assert durable.queues.get_stats("payments")["paused"] is True

    client.post(reverse("durable:queue-control", args=["payments", "resume"]))
    assert durable.queues.get_stats("payments")["paused"] is False


def test_an_unknown_queue_or_action_changes_nothing(superuser) -> None:
    client = client_for(superuser)
    answer = client.post(reverse("durable:queue-control", args=["nope", "pause"]), follow=True)
    assert "is not configured in DURABLE[&#x27;QUEUES&#x27;]" in answer.content.decode()
    answer = client.post(
        reverse("durable:queue-control", args=["payments", "explode"]), follow=True
    )
    assert "Unknown queue action &#x27;explode&#x27;" in answer.content.decode()
    assert not QueueState.objects.exists()


def test_anonymous_users_are_sent_to_log_in() -> None:
    answer = client_for(None).get(reverse("durable:queues"))
    assert answer.status_code == 302


def test_a_hostile_queue_name_is_escaped(superuser) -> None:
    _tasks('"><img src=x onerror=alert(1)>', due=1)
    html = client_for(superuser).get(reverse("durable:queues")).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "not configured" in html
