"""The dashboard's WebSockets: who may connect, and what they are sent."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

import durable
from durable.routing import websocket_urlpatterns
from durable.testing import run_until_idle
from durable.web.consumers import shown_rows
from tests.web.workflows import WebSteps

ROUTER = URLRouter(websocket_urlpatterns)


async def _connect(path: str, user):
    communicator = WebsocketCommunicator(ROUTER, path)
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.parametrize("path", ["/ws/durable/executions/", "/ws/durable/executions/abc/"])
@pytest.mark.parametrize("who", ["anonymous", "outsider", "inactive_staff"])
@pytest.mark.django_db
def test_connections_of_anonymous_and_non_staff_users_are_refused(path, who, outsider, viewer):
    user = {"anonymous": AnonymousUser(), "outsider": outsider, "inactive_staff": viewer}[who]
    if who == "inactive_staff":
        viewer.is_active = False

    async def run():
        communicator, connected, code = await _connect(path, user)
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(run)() == (False, 4003)


@pytest.mark.django_db(transaction=True)
def test_staff_receive_the_execution_regions_as_out_of_band_fragments(viewer):
    wid = durable.start(WebSteps, {"label": "<b>x</b>"})
    run_until_idle()

    async def run():
        communicator, connected, _ = await _connect(f"/ws/durable/executions/{wid}/", viewer)
        assert connected
        message = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return message

    message = async_to_sync(run)()
    for region in ("summary", "steps", "timeline", "attempts", "context"):
        assert f'hx-swap-oob="true" id="region-{region}"' in message
    assert 'hx-swap-oob="true" id="graph-states"' in message
    assert "<svg" not in message  # the graph is drawn once, with the page
    assert 'data-step="finish" data-status="completed"' in message
    assert "&lt;b&gt;x&lt;/b&gt;" in message
    assert "<b>x</b>" not in message


@pytest.mark.django_db(transaction=True)
def test_the_list_socket_sends_status_changes(viewer):
    def run_workflow() -> int:
        wid = durable.start(WebSteps)
        run_until_idle()
        return durable.get_execution(wid).pk

    async def run():
        communicator, connected, _ = await _connect("/ws/durable/executions/", viewer)
        assert connected
        pk = await sync_to_async(run_workflow)()
        # The page says which rows it shows (htmx ws-send of #execution-rows).
        await communicator.send_to(text_data=json.dumps({"rows": f"{pk}", "HEADERS": {}}))
        text = ""
        while 'class="st st-completed"' not in text:
            text += await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return pk, text

    pk, text = async_to_sync(run)()
    assert f'id="exec-{pk}-status" hx-swap-oob="true"' in text


@pytest.mark.django_db
def test_the_asgi_application_refuses_foreign_origins(superuser):
    from testproject.asgi import application

    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/durable/executions/", headers=[(b"origin", b"http://evil.example")]
        )
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert async_to_sync(run)() is False


@pytest.mark.django_db(transaction=True)
def test_the_list_socket_signals_new_executions_once(viewer):
    async def run():
        communicator, connected, _ = await _connect("/ws/durable/executions/", viewer)
        assert connected
        assert await communicator.receive_nothing(timeout=1.5)  # nothing new yet
        await sync_to_async(durable.start)(WebSteps)
        text = await communicator.receive_from(timeout=5)
        later = await communicator.receive_nothing(timeout=1.5)
        await communicator.disconnect()
        return text, later

    text, later = async_to_sync(run)()
    assert 'id="execution-list-signal" hx-swap-oob="true"' in text
    assert "htmx.trigger(document.body, 'durable-refresh')" in text
    assert "exec-" not in text  # no cells for a row the page does not show (yet)
    assert later  # the same execution does not signal again


@pytest.mark.django_db(transaction=True)
def test_the_list_socket_sends_cells_only_for_the_rows_the_page_shows(viewer):
    """An out-of-band fragment whose target is not on the page is an htmx error
    (htmx:oobErrorNoTarget): rows on other pages or filtered out get nothing."""

    def run_two() -> tuple[int, int]:
        shown, hidden = durable.start(WebSteps), durable.start(WebSteps)
        run_until_idle()
        return durable.get_execution(shown).pk, durable.get_execution(hidden).pk

    async def run():
        communicator, connected, _ = await _connect("/ws/durable/executions/", viewer)
        assert connected
        shown, hidden = await sync_to_async(run_two)()
        await communicator.send_to(text_data=json.dumps({"rows": f"{shown}"}))
        text = ""
        while f"exec-{shown}-duration" not in text:
            text += await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return shown, hidden, text

    shown, hidden, text = async_to_sync(run)()
    assert f'id="exec-{shown}-status" hx-swap-oob="true"' in text
    assert f'<span id="exec-{shown}-duration" hx-swap-oob="true">' in text
    assert " ms</span>" in text  # the finished row's duration, no longer blank
    assert f"exec-{hidden}-" not in text


@pytest.mark.parametrize(
    "message",
    ["", "not json", "[]", '{"rows": 5}', '{"rows": "1,x"}', '{"rows": "' + "1," * 600 + '"}'],
)
def test_messages_that_do_not_list_rows_are_ignored(message):
    assert shown_rows(message) is None


def test_a_rows_message_lists_row_ids():
    assert shown_rows('{"rows": "3,1,2", "HEADERS": {"HX-Request": "true"}}') == {1, 2, 3}
    assert shown_rows('{"rows": ""}') == frozenset()
