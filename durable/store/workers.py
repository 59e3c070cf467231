"""Worker processes, as they last told: registered at start, seen with every lease
renewal, stopped at a clean exit. An expired lease is only as bad as its holder's
state: a worker gone since (killed, out of memory) lost the task; one still alive was
late (busy, or cut off from the database), and the task just runs again."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from durable.models import WorkerState


def register(worker_id: str, queues: dict[str, int], *, using: str) -> None:
    now = timezone.now()
    WorkerState.objects.using(using).update_or_create(
        worker_id=worker_id,
        defaults={
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues,
            "started_at": now,
            "seen_at": now,
            "stopped_at": None,
        },
    )


def seen(worker_id: str, *, using: str) -> None:
    WorkerState.objects.using(using).filter(worker_id=worker_id).update(seen_at=timezone.now())


def stopped(worker_id: str, *, using: str) -> None:
    now = timezone.now()
    WorkerState.objects.using(using).filter(worker_id=worker_id).update(seen_at=now, stopped_at=now)


def gone(worker_ids: Iterable[str], *, silent_for: float, using: str) -> set[str]:
    """Which of `worker_ids` are gone: stopped, unknown, or not seen for `silent_for`
    seconds (their process stopped renewing its leases)."""
    ids = set(worker_ids)
    if not ids:
        return set()
    since = timezone.now() - timedelta(seconds=silent_for)
    alive = set(
        WorkerState.objects.using(using)
        .filter(worker_id__in=ids, stopped_at__isnull=True, seen_at__gte=since)
        .values_list("worker_id", flat=True)
    )
    return ids - alive
