"""The queue page: per queue, its depth (ready work that is due), the age of the oldest
ready task, what runs, what is scheduled later or waits, its concurrency (per worker, the
global cap, and the slots of the live workers serving it), and pause / resume.

Seeing it needs dashboard access; pausing and resuming need the `durable.operate`
permission (superusers have it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

import durable.queues
from durable.conf import durable_settings
from durable.models import QueueState, Task, TaskStatus, WorkerState
from durable.web import access
from durable.web.timeline import duration_text
from durable.web.views import _partial

OPERATE_PERMISSION = "durable.operate"
# How often the open page refetches its table (seconds).
REFRESH_SECONDS = 2


@dataclass(frozen=True)
class QueueRow:
    name: str
    configured: bool
    paused: bool
    due: int  # ready now: the depth
    oldest_due: datetime | None
    running: int
    later: int  # ready at a later time (retries after backoff, scheduled starts)
    waiting: int  # parked on waits, held by flow control or a deploy
    concurrency: int | None
    global_concurrency: int | None
    workers: int
    slots: int

    @property
    def oldest_age(self) -> str:
        if self.oldest_due is None:
            return ""
        return duration_text(max((timezone.now() - self.oldest_due).total_seconds(), 0.0))


def queue_rows(now: datetime | None = None) -> list[QueueRow]:
    """Every configured queue, and any other queue that holds tasks."""
    now = now or timezone.now()
    using = durable_settings.DATABASE
    ready = Q(status=TaskStatus.READY)
    counts: dict[str, dict[str, Any]] = {
        row["queue"]: dict(row)
        for row in Task.objects.using(using)
        .order_by()
        .values("queue")
        .annotate(
            due=Count("id", filter=ready & Q(run_at__lte=now)),
            oldest_due=Min("run_at", filter=ready & Q(run_at__lte=now)),
            running=Count("id", filter=Q(status=TaskStatus.CLAIMED)),
            later=Count("id", filter=ready & Q(run_at__gt=now)),
            waiting=Count(
                "id",
                filter=Q(status__in=[TaskStatus.WAITING, TaskStatus.HELD, TaskStatus.PARKED]),
            ),
        )
    }
    paused = set(QueueState.objects.using(using).filter(paused=True).values_list("name", flat=True))
    workers = _live_workers(now, using)
    configured = durable_settings.queue_names()
    rows = []
    for name in [*configured, *sorted(set(counts) - set(configured))]:
        found = counts.get(name, {})
        known = name in configured
        serving = [w for w in workers if name in w]
        rows.append(
            QueueRow(
                name=name,
                configured=known,
                paused=name in paused,
                due=found.get("due", 0),
                oldest_due=found.get("oldest_due"),
                running=found.get("running", 0),
                later=found.get("later", 0),
                waiting=found.get("waiting", 0),
                concurrency=durable_settings.queue_concurrency(name) if known else None,
                global_concurrency=(
                    durable_settings.queue_global_concurrency(name) if known else None
                ),
                workers=len(serving),
                slots=sum(int(w[name] or 0) for w in serving),
            )
        )
    return rows


def _live_workers(now: datetime, using: str) -> list[dict[str, Any]]:
    """The queues (name -> concurrency) of each worker seen within two lease periods."""
    recent = now - timedelta(seconds=2 * float(durable_settings.LEASE_SECONDS))
    return [
        queues if isinstance(queues, dict) else {}
        for queues in WorkerState.objects.using(using)
        .filter(stopped_at__isnull=True, seen_at__gte=recent)
        .values_list("queues", flat=True)
    ]


def _context(request: HttpRequest) -> dict[str, Any]:
    return {
        "queues": queue_rows(),
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
        "refresh_seconds": REFRESH_SECONDS,
    }


@require_GET
@access.staff_required()
def queue_list(request: HttpRequest) -> HttpResponse:
    template = "durable/partials/queue_table.html" if _partial(request) else "durable/queues.html"
    response = render(request, template, _context(request))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
@access.staff_required()
def queue_control(request: HttpRequest, name: str, action: str) -> HttpResponse:
    if not request.user.has_perm(OPERATE_PERMISSION):
        raise PermissionDenied(f"you need the {OPERATE_PERMISSION} permission")
    control = {"pause": durable.queues.pause, "resume": durable.queues.resume}.get(action)
    if control is None:
        messages.error(request, f"Unknown queue action {action!r}: use pause or resume.")
    else:
        try:
            control(name)
        except ValueError as exc:
            messages.error(request, f"Could not {action} the queue: {exc}")
        else:
            done = "Paused" if action == "pause" else "Resumed"
            messages.success(request, f"{done} queue {name!r}.")
    if _partial(request):
        context = _context(request)
        context["with_messages"] = True
        response = render(request, "durable/partials/queue_table.html", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    return redirect("durable:queues")
