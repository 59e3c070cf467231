"""The dashboard's round-2 features in real headless Chromium, against daphne on the test
database: the graph's view, live frames, the JSON viewer, history, search, counts, the
queue page, row selection, the waterfall, dark mode and narrow screens. Screenshots go to
tests/artifacts/ (named in SCREENSHOTS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

import durable
from durable.models import StepExecution
from durable.testing import run_until_idle
from tests.web.test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _require_browser,
)
from tests.web.test_browser import web_server as web_server  # a fixture
from tests.web.workflows import ITEMS

pytestmark = pytest.mark.e2e

WIDE = {"width": 1440, "height": 900}
NARROW = {"width": 390, "height": 844}
FRAME_LIMIT = 5 * 1024


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    _require_browser()
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's ORM calls are
    # still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            connections.close_all()


class Session:
    """Pages of one signed-in user on the test server."""

    def __init__(self, browser: Any, server: str, user: User) -> None:
        self.browser = browser
        self.server = server
        client = Client()
        client.force_login(user)
        self.cookie = client.cookies["sessionid"].value

    def page(self, viewport: dict[str, int] = WIDE, dark: bool = False) -> Any:
        context = self.browser.new_context(
            viewport=viewport, color_scheme="dark" if dark else "light"
        )
        context.add_cookies([{"name": "sessionid", "value": self.cookie, "url": self.server}])
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []

        def console(message: Any) -> None:
            # A failed load is reported below with its address (the favicon aside).
            if message.type == "error" and not message.text.startswith("Failed to load"):
                errors.append(message.text)

        def response(answer: Any) -> None:
            if answer.status >= 400 and not answer.url.endswith("/favicon.ico"):
                errors.append(f"{answer.status} {answer.url}")

        page.on("console", console)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", response)
        page.console_errors = errors
        return page

    def goto(self, page: Any, path: str) -> Any:
        page.goto(f"{self.server}{path}")
        return page


@pytest.fixture
def session(browser: Any, web_server: str) -> Session:
    return Session(browser, web_server, User.objects.create_superuser("root", password="pw"))


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


def _boxes(page: Any) -> tuple[dict[str, float], list[dict[str, float]], dict[str, float]]:
    """The graph's box, its nodes' boxes (on screen) and the window."""
    return page.evaluate(
        """() => {
        const r = (e) => { const b = e.getBoundingClientRect();
            return {x: b.x, y: b.y, width: b.width, height: b.height}; };
        return [r(document.getElementById('graph')),
                [...document.querySelectorAll('#graph g.node')].map(r),
                {x: 0, y: 0, width: innerWidth, height: innerHeight}];
    }"""
    )


def test_the_graph_fits_its_panel_zooms_pans_and_follows_the_running_node(session) -> None:
    wid = durable.start("web_order")
    run_until_idle()  # held at validate_inventory, the first step
    page = session.goto(session.page(), f"/durable/executions/{wid}/")
    page.wait_for_selector("#graph svg")
    screenshot(page, "graph-fit-1440")

    # All 19 nodes are on screen, above the fold, and the drawing fills its panel's width.
    graph, nodes, window = _boxes(page)
    assert len(nodes) == 19
    assert all(_inside(n, graph) for n in nodes)
    assert all(_inside(n, window) for n in nodes)
    svg_width = page.evaluate("document.querySelector('#graph svg').getBoundingClientRect().width")
    assert svg_width >= 0.95 * graph["width"]

    # Zoomed in, it shows part of the graph, and (following) the running node is in it.
    page.click('[data-graph="zoom-in"]')
    page.click('[data-graph="zoom-in"]')
    assert float(page.get_attribute("#graph", "data-zoom")) > 2
    graph, nodes, _ = _boxes(page)
    assert sum(not _inside(n, graph) for n in nodes) > 8
    active = page.locator("#graph g.node.active")
    assert active.get_attribute("data-node-id") == "validate_inventory"
    assert _inside(active.bounding_box(), graph)

    # The running node moves to the bottom of the graph: the view follows it, live.
    durable.send_event(wid, "go", {})
    run_until_idle()  # now held at ship_domestic
    page.wait_for_selector('#graph g.node.active[data-node-id="ship_domestic"]')
    page.wait_for_function(
        """() => { const g = document.getElementById('graph').getBoundingClientRect();
        const n = document.querySelector('#graph g.node.active').getBoundingClientRect();
        return n.top >= g.top && n.bottom <= g.bottom; }"""
    )
    assert page.locator("#graph g.node.status-completed").count() >= 10
    screenshot(page, "graph-follow-1440")

    # Dragging pans (and stops following); Fit shows everything again.
    before = page.get_attribute("#graph svg", "viewBox")
    box = page.locator("#graph").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 120, steps=4)
    page.mouse.up()
    assert page.get_attribute("#graph svg", "viewBox") != before
    assert not page.is_checked('[data-graph="follow"]')
    page.click('[data-graph="fit"]')
    graph, nodes, _ = _boxes(page)
    assert all(_inside(n, graph) for n in nodes)
    assert page.console_errors == []

    # At 390 px the whole graph still fits the screen's width.
    narrow = session.goto(session.page(NARROW), f"/durable/executions/{wid}/")
    narrow.wait_for_selector("#graph svg")
    screenshot(narrow, "graph-390")
    graph, nodes, window = _boxes(narrow)
    assert all(_inside(n, graph) for n in nodes)
    assert all(n["x"] + n["width"] <= window["width"] for n in nodes)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]


def test_a_live_frame_for_one_item_of_a_30_item_foreach_is_small(session) -> None:
    wid = durable.start("web_foreach")
    run_until_idle()
    page = session.page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    session.goto(page, f"/durable/executions/{wid}/")
    page.wait_for_function("() => document.querySelectorAll('#attempt-list > details').length > 0")
    page.wait_for_timeout(1500)  # the first frame (the whole page) has arrived
    assert frames
    assert len(frames[0].encode()) > 20 * 1024
    seen = len(frames)

    durable.send_event(wid, "go-SKU-011", {})
    run_until_idle()
    item = StepExecution.objects.get(
        execution__workflow_id=wid, step="handle_item", scope_key__contains="[11]"
    )
    page.wait_for_selector(f'#attempt-{item.pk}[data-status="completed"]')
    page.wait_for_selector(f'#bar-{item.pk}[data-status="completed"]')
    page.wait_for_timeout(1200)
    live = [len(str(f).encode()) for f in frames[seen:]]
    print("browser frames after the change:", live)
    assert live
    assert max(live) < FRAME_LIMIT
    assert page.locator("#attempt-list > details").count() == ITEMS + 1  # prepare + 30 items
    assert page.console_errors == []
