"""`durable.queues`: pause, resume and inspect queues shared by every worker."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from durable.conf import durable_settings
from durable.models import QueueState, Task, TaskStatus


def _known(name: str) -> str:
    if name not in durable_settings.queue_names():
        raise ValueError(
            f"queue {name!r} is not configured in DURABLE['QUEUES'] "
            f"(configured: {', '.join(durable_settings.queue_names())})"
        )
    return name


def pause(name: str) -> None:
    """Workers stop claiming from the queue; running steps finish."""
    QueueState.objects.using(durable_settings.DATABASE).update_or_create(
        name=_known(name), defaults={"paused": True}
    )


def resume(name: str) -> None:
    QueueState.objects.using(durable_settings.DATABASE).update_or_create(
        name=_known(name), defaults={"paused": False}
    )


def get_stats(name: str) -> dict[str, Any]:
    """{"running", "pending", "concurrency", "paused"}; pending counts ready and delayed work."""
    using = durable_settings.DATABASE
    counts = (
        Task.objects.using(using)
        .filter(queue=_known(name))
        .aggregate(
            running=Count("id", filter=Q(status=TaskStatus.CLAIMED)),
            pending=Count("id", filter=Q(status=TaskStatus.READY)),
        )
    )
    paused = QueueState.objects.using(using).filter(name=name, paused=True).exists()
    return {
        "running": counts["running"],
        "pending": counts["pending"],
        "concurrency": durable_settings.queue_concurrency(name),
        "paused": paused,
    }
