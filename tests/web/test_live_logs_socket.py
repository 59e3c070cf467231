"""The execution page's WebSocket sends a running step's new log lines as a worker stores
them (durable.engine.livelogs): no reload, no waiting for the step to end."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

import durable
from durable.routing import websocket_urlpatterns
from tests.observability import workflows as wf

pytestmark = pytest.mark.e2e

ROUTER = URLRouter(websocket_urlpatterns)
MODULES = "tests.observability.workflows"
RECEIVE_TIMEOUT = 60


def attempts_region(text: str) -> str:
    """The attempt (the whole region in the first frame, the changed attempt after it) sent
    in `text`, "" if none: the step has one attempt, so its log lines are all in it."""
    found = re.findall(r'<details[^>]*class="attempt".*?</details>', text, re.S)
    return found[-1] if found else ""


def messages(region: str) -> list[str]:
    return re.findall(r'<td class="msg">(.*?)</td>', region)


def test_a_running_steps_new_line_reaches_the_open_page(workers, tmp_path, viewer) -> None:
    workers.start(1, workflow_modules=MODULES)
    wid = durable.start(wf.LiveLines, {"gates": str(tmp_path)})

    async def receive_until(communicator: WebsocketCommunicator, wanted: list[str]) -> str:
        region = ""
        while messages(region) != wanted:
            text = await communicator.receive_from(timeout=RECEIVE_TIMEOUT)
            region = attempts_region(text) or region
        return region

    async def run() -> tuple[str, str]:
        communicator = WebsocketCommunicator(ROUTER, f"/ws/durable/executions/{wid}/")
        communicator.scope["user"] = viewer
        connected, _ = await communicator.connect()
        assert connected
        # The step is held at its first gate: running, one line stored so far.
        first = await receive_until(communicator, ["line 1"])
        await sync_to_async((tmp_path / "one").touch)()
        second = await receive_until(communicator, ["line 1", "line 2"])
        await sync_to_async((tmp_path / "two").touch)()
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(run)()
    assert 'class="st st-running"' in first
    assert 'class="st st-running"' in second  # still held at its second gate
