"""The execution page's socket sends only what changed (durable.web.live)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse

import durable
from durable.models import StepExecution, WorkflowExecution
from durable.routing import websocket_urlpatterns
from durable.testing import run_until_idle
from durable.web.history import ExecutionHistory, history
from durable.web.live import Tracker, out_of_band, page_digest
from durable.web.presenters import execution_view
from tests.web.conftest import client_for
from tests.web.workflows import ITEMS, WebForeach, WebSteps

ROUTER = URLRouter(websocket_urlpatterns)
FRAME_LIMIT = 5 * 1024


def _page(execution: WorkflowExecution) -> tuple[Any, ExecutionHistory]:
    view = execution_view(execution)
    return view, history(execution, view.attempts)


def _rows(frame: str) -> set[str]:
    """The attempts and waterfall bars a frame sends."""
    return set(re.findall(r'\bid="((?:attempt|bar)-\d+)"', frame))


@pytest.mark.django_db(transaction=True)
def test_a_one_step_change_to_a_30_item_foreach_sends_a_small_frame(viewer) -> None:
    wid = durable.start(WebForeach)
    run_until_idle()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert StepExecution.objects.filter(execution=execution, step="handle_item").count() == ITEMS

    async def run() -> tuple[str, list[str]]:
        communicator = WebsocketCommunicator(ROUTER, f"/ws/durable/executions/{wid}/")
        communicator.scope["user"] = viewer
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_from(timeout=5)

        def one_item() -> None:
            durable.send_event(wid, "go-SKU-007", {})
            run_until_idle()

        await sync_to_async(one_item)()
        frames = []
        while not any("SKU-007" in f and "completed" in f for f in frames):
            frames.append(await communicator.receive_from(timeout=5))
        # Whatever else arrives for this change (a poll may see it in two halves), and the
        # frames that only move the clock.
        for _ in range(3):
            if not await communicator.receive_nothing(timeout=0.6):
                frames.append(await communicator.receive_from(timeout=1))
        await communicator.disconnect()
        return first, frames

    first, frames = async_to_sync(run)()
    # The first frame brings the whole page up to date: it is large.
    assert len(first.encode()) > 20 * 1024
    sizes = [len(frame.encode()) for frame in frames]
    assert max(sizes) < FRAME_LIMIT, sizes
    sent = "".join(frames)
    item = StepExecution.objects.get(
        execution=execution, step="handle_item", scope_key__contains="[7]", status="completed"
    )
    assert f'id="attempt-{item.pk}"' in sent
    assert f'id="bar-{item.pk}"' in sent
    # Only item 7's rows of the 30: no other attempt or bar was sent again.
    assert _rows(sent) == {f"attempt-{item.pk}", f"bar-{item.pk}"}
    assert 'id="region-context"' not in sent  # an item's change stays in its branch


@pytest.mark.django_db
def test_the_tracker_replaces_appends_and_deletes_pieces() -> None:
    wid = durable.start(WebSteps)
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    tracker = Tracker()
    first = tracker.frame(*_page(execution))
    assert 'id="region-attempts"' in first
    assert 'id="region-timeline"' in first
    assert tracker.frame(*_page(execution)).count("hx-swap-oob") <= 1  # the clock

    run_until_idle()
    execution.refresh_from_db()
    frame = tracker.frame(*_page(execution))
    rows = StepExecution.objects.filter(execution=execution).order_by("id")
    # New attempts and bars are appended to their containers, not swapped by id.
    assert frame.count('hx-swap-oob="beforeend:#attempt-list"') == rows.count()
    assert frame.count('hx-swap-oob="beforeend:#gantt-rows"') == rows.count()
    assert '<section hx-swap-oob="true" id="region-summary"' in frame
    assert 'id="step-0"' in frame  # the step list's entries changed in place

    # A piece that is gone is deleted from the page.
    gone = rows.last()
    gone_pk = gone.pk
    gone.delete()
    frame = tracker.frame(*_page(execution))
    assert f'<div id="attempt-{gone_pk}" hx-swap-oob="delete"></div>' in frame
    assert f'<div id="bar-{gone_pk}" hx-swap-oob="delete"></div>' in frame


def test_out_of_band_marks_the_first_element() -> None:
    assert out_of_band('  <li id="a">x</li>') == '  <li hx-swap-oob="true" id="a">x</li>'
    assert out_of_band("<div>x</div>", "beforeend:#list") == (
        '<div hx-swap-oob="beforeend:#list">x</div>'
    )
    with pytest.raises(ValueError, match="must start with an element"):
        out_of_band("text <b>x</b>")


@pytest.mark.django_db
def test_a_page_still_up_to_date_is_sent_only_the_clock_first(viewer) -> None:
    wid = durable.start(WebSteps)
    run_until_idle()
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    digest = page_digest(*_page(execution))
    first = Tracker(digest).frame(*_page(execution))
    assert 'id="region-' not in first
    assert first.count("hx-swap-oob") == 2  # the axis: its length and its ticks
    assert len(first.encode()) < 1024

    stale = Tracker("0" * 32).frame(*_page(execution))
    assert 'hx-swap-oob="true" id="region-attempts"' in stale

    page = client_for(viewer).get(reverse("durable:execution-detail", args=[wid]))
    assert f'ws-connect="/ws/durable/executions/{wid}/?v={digest}"' in page.content.decode()
