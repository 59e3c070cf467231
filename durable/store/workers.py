"""Worker processes, as they last told: registered at start, seen with every lease
renewal, stopped at a clean exit. An expired lease is only as bad as its holder's
state: a worker gone since (killed, out of memory) lost the task; one still alive was
late (busy, or cut off from the database), and the task just runs again."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class Verdict:
    """What became of the workers that held a task's lapsed leases."""

    gone: frozenset[str]  # stopped, never heard of, or silent for two leases
    # Silent for more than a lease but less than two: dead, or cut off from the database
    # for a while. Known for sure at `decided_at` (the latest of them).
    undecided: frozenset[str]
    decided_at: datetime | None


def judge(worker_ids: Iterable[str], *, lease_seconds: float, using: str) -> Verdict:
    """Which of `worker_ids` are gone. A live worker is seen every third of a lease (its
    lease keeper runs whatever its steps do), so one seen within half a lease lives on;
    one whose process stopped was last seen a lease or more before its lease lapsed, and
    is only told from a worker cut off from the database once two leases have passed."""
    ids = set(worker_ids)
    if not ids:
        return Verdict(frozenset(), frozenset(), None)
    now = timezone.now()
    seen = dict(
        WorkerState.objects.using(using)
        .filter(worker_id__in=ids, stopped_at__isnull=True)
        .values_list("worker_id", "seen_at")
    )
    lease = timedelta(seconds=lease_seconds)
    gone = {w for w in ids if w not in seen or seen[w] <= now - 2 * lease}
    undecided = {w for w in ids - gone if seen[w] <= now - lease / 2}
    decided_at = max((seen[w] + 2 * lease for w in undecided), default=None)
    return Verdict(frozenset(gone), frozenset(undecided), decided_at)
