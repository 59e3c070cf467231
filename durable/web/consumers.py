"""WebSocket consumers that keep the dashboard live, sending htmx out-of-band fragments.

Each consumer re-reads what its page shows and sends the pieces that changed (the
execution page's pieces: durable.web.live). It wakes on
the message bus when the bus reaches other processes (workers), and polls the database
otherwise; it polls in both cases, since progress reports and the log lines a worker stores
while a step runs (durable.engine.livelogs) do not go over the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from durable.bus import AsyncSubscription, get_bus
from durable.conf import durable_settings
from durable.events import ALL_WORKFLOWS_TOPIC, workflow_topic
from durable.models import PendingInput, StepExecution, StepStatus, WorkflowExecution
from durable.web.access import is_operator, sees_payloads
from durable.web.history import history
from durable.web.live import Tracker
from durable.web.lookups import checked_workflow_ids
from durable.web.presenters import execution_view, with_progress

logger = logging.getLogger("durable.web")

FORBIDDEN = 4003
NOT_FOUND = 4004
POLL_SECONDS = 0.5
# With a bus that wakes us, polling only picks up progress reports and live log lines.
POLL_SECONDS_WITH_BUS = 1.0


class LiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    topic = ""

    async def connect(self) -> None:
        # has_perm may read the database: not on the event loop.
        if not await database_sync_to_async(is_operator)(self.scope.get("user")):
            await self.close(code=FORBIDDEN)
            return
        self._sent: dict[str, str] = {}
        self._subscription: AsyncSubscription | None = None
        await self.accept()
        self._task = asyncio.create_task(self._run())

    async def disconnect(self, code: int) -> None:
        task = getattr(self, "_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if getattr(self, "_subscription", None) is not None:
            await self._subscription.aclose()  # type: ignore[union-attr]
            self._subscription = None

    async def _subscribe(self) -> None:
        try:
            bus = get_bus()
            if bus.capabilities.delivers_across_processes:
                self._subscription = await bus.asubscribe(self.topic)
        except Exception as exc:  # the bus is an optimisation; polling still works
            logger.warning("live updates fall back to polling: %s", exc)

    async def _run(self) -> None:
        await self._subscribe()
        interval = POLL_SECONDS if self._subscription is None else POLL_SECONDS_WITH_BUS
        while True:
            fragments, done = await database_sync_to_async(self.changes)()
            if fragments:
                await self.send(text_data=fragments)
            if done:
                return
            if self._subscription is None:
                await asyncio.sleep(interval)
            else:
                await self._subscription.get(timeout=interval)

    def changed(self, key: str, html: str) -> str:
        """`html` if it differs from what was last sent under `key`, else ""."""
        if self._sent.get(key) == html:
            return ""
        self._sent[key] = html
        return html

    def changes(self) -> tuple[str, bool]:
        """The fragments to send now, and whether nothing will ever change again."""
        raise NotImplementedError


class ExecutionConsumer(LiveConsumer):
    """One execution's page: summary, graph, timeline, logs, context, inputs, controls."""

    async def connect(self) -> None:
        self.workflow_id = str(self.scope["url_route"]["kwargs"]["workflow_id"])
        if checked_workflow_ids([self.workflow_id]) is None:
            # An id no execution can have (a NUL would be a database error on PostgreSQL).
            await self.close(code=NOT_FOUND)
            return
        self.topic = workflow_topic(self.workflow_id)
        self._first = True
        self._tracker = Tracker(_query_value(self.scope.get("query_string", b""), "v"))
        await super().connect()

    def changes(self) -> tuple[str, bool]:
        using = durable_settings.DATABASE
        execution = (
            WorkflowExecution.objects.using(using).filter(workflow_id=self.workflow_id).first()
        )
        if execution is None:
            return "", True
        view = execution_view(execution, payloads=sees_payloads(self.scope.get("user")))
        entries = history(execution, view.attempts, payloads=not view.payloads_hidden)
        parts = [self._tracker.frame(view, entries)]
        # Regions with forms are fetched over HTTP (they need the CSRF token).
        pending = tuple(
            PendingInput.objects.using(using)
            .filter(execution=execution, status=PendingInput.Status.PENDING)
            .values_list("pk", flat=True)
        )
        keys = {"inputs": repr(pending), "controls": repr(execution.is_finished)}
        for region, key in keys.items():
            if self.changed(f"key:{region}", key) and not self._first:
                url = reverse(
                    "durable:execution-region",
                    kwargs={"workflow_id": self.workflow_id, "region": region},
                )
                parts.append(
                    f'<div id="region-{region}" hx-swap-oob="true" hx-get="{url}" '
                    'hx-trigger="load" hx-swap="outerHTML"></div>'
                )
        self._first = False
        # Keep going a little after the end: the last checkpoint may still be settling.
        done = execution.is_finished and bool(
            execution.completed_at
            and timezone.now() - execution.completed_at > timedelta(seconds=5)
        )
        return "".join(parts), done


class ExecutionListConsumer(LiveConsumer):
    """The execution list: status, current step and progress of rows as they change, and a
    signal that makes the first page refetch itself when new executions appear."""

    topic = ALL_WORKFLOWS_TOPIC

    async def connect(self) -> None:
        # Rows the page rendered may change between its render and this connection. The
        # page says when it was rendered (`?since=`): executions created after that are new.
        self._cursor: datetime = timezone.now() - timedelta(seconds=5)
        self._newest: datetime = _since(self.scope.get("query_string", b"")) or self._cursor
        # Not further back than a few minutes: a reconnecting old page needs the signal
        # (it refetches its rows), not every change since.
        self._cursor = max(min(self._cursor, self._newest), self._cursor - timedelta(minutes=5))
        # The rows the page shows (it says so on load and after every refetch): cells are
        # sent for those only, since an out-of-band fragment without its target is an htmx
        # error. Rows newly shown get their current cells once (`_fresh`).
        self._shown: frozenset[int] = frozenset()
        self._fresh: frozenset[int] = frozenset()
        await super().connect()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        shown = shown_rows(text_data)
        if shown is not None:
            self._fresh = shown - self._shown
            self._shown = shown

    def changes(self) -> tuple[str, bool]:
        using = durable_settings.DATABASE
        shown, fresh = self._shown, self._fresh
        self._fresh = frozenset()
        rows = list(
            WorkflowExecution.objects.using(using)
            .filter(updated_at__gte=self._cursor)
            .order_by("updated_at")[:200]
        )
        progress: dict[int, Any] = dict(
            StepExecution.objects.using(using)
            .filter(status=StepStatus.RUNNING, progress__isnull=False, execution_id__in=shown)
            .values_list("execution_id", "progress")[:500]
        )
        if rows:
            self._cursor = rows[-1].updated_at
        newest = max((r.created_at for r in rows), default=self._newest)
        rows = [r for r in rows if r.pk in shown]
        for pk in fresh:
            self._sent.pop(str(pk), None)
        missing = (set(progress) | fresh) - {r.pk for r in rows}
        if missing:
            rows += list(WorkflowExecution.objects.using(using).filter(pk__in=missing))
        parts = []
        for execution in with_progress(rows, progress):
            html = render_to_string(
                "durable/partials/execution_cells.html", {"e": execution, "oob": True}
            )
            parts.append(self.changed(str(execution.pk), html))
        if newest > self._newest:
            self._newest = newest
            parts.append(
                render_to_string(
                    "durable/partials/list_signal.html", {"newest": newest.isoformat()}
                )
            )
        return "".join(parts), False


MAX_SHOWN_ROWS = 500


def shown_rows(text: str | None) -> frozenset[int] | None:
    """The row ids in a page's `{"rows": "1,2,3"}` message (htmx ws-send), or None for a
    message that is not one."""
    if not text or len(text) > 20_000:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    rows = message.get("rows") if isinstance(message, dict) else None
    if not isinstance(rows, str):
        return None
    ids = [part for part in rows.split(",") if part]
    if len(ids) > MAX_SHOWN_ROWS:
        return None
    if not all(p.isascii() and p.isdigit() and len(p) < 19 for p in ids):
        return None
    return frozenset(int(p) for p in ids)


def _query_value(query_string: bytes, name: str) -> str:
    values = parse_qs(query_string.decode("latin-1")).get(name, [])
    return values[0][:64] if values else ""


def _since(query_string: bytes) -> datetime | None:
    """The `since` parameter: an aware ISO datetime no later than now, else None."""
    values = parse_qs(query_string.decode("latin-1")).get("since", [])
    try:
        moment = datetime.fromisoformat(values[0]) if values else None
    except ValueError:
        return None
    if moment is None or timezone.is_naive(moment):
        return None
    return min(moment, timezone.now())
