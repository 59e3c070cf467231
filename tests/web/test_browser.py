"""The dashboard in real headless Chromium, against daphne and a real worker process."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections

import durable
from durable.models import PendingInput, WorkflowExecution
from tests.support.servers import daphne_server
from tests.support.workers import REPO, WorkerPool, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "artifacts"
WORKFLOWS = "tests.web.workflows"
TIMEOUT_MS = 20_000


def _require_browser() -> None:
    """Skip locally without a browser; under CI a missing browser is a failure."""
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def web_server(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """daphne serving testproject.asgi (HTTP and WebSockets) on the test database."""
    with daphne_server(tmp_path, WORKFLOWS, {"DJANGO_DEBUG": "1"}) as url:
        yield url


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            yield page
        finally:
            browser.close()
            # Inside this block the ORM runs in another context (Playwright's greenlet),
            # so the test body opened its own connections: close them, or the test
            # database cannot be dropped.
            connections.close_all()


def _screenshot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_dashboard_end_to_end(web_server, browser_page, workers: WorkerPool):
    page = browser_page
    User.objects.create_superuser("admin", password="admin-pw")
    workers.start(workflow_modules=WORKFLOWS)

    # Log in: the dashboard sends anonymous users to the admin login.
    page.goto(f"{web_server}/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#execution-table")

    # Start a workflow from the list page; its page follows it without reloading.
    page.click("details.start summary")
    page.select_option("#id_workflow", "web_steps")
    page.fill("#id_input", json.dumps({"label": "browser", "delay": 0.8}))
    page.click("#start-form button[type=submit]")
    page.wait_for_selector("#execution[data-workflow-id]")
    wid = page.get_attribute("#execution", "data-workflow-id")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#region-steps progress")  # crunch reports progress live
    page.wait_for_selector("#node-crunch g.progress")  # ... on its graph node too
    _screenshot(page, "execution-running")
    page.wait_for_selector('[data-step="finish"][data-status="completed"]')
    page.wait_for_selector('#execution-status[data-status="completed"]')
    for step in ("fetch", "crunch", "finish"):
        assert page.is_visible(f'li[data-step="{step}"][data-status="completed"]')
        # The SVG graph's node, recoloured in place.
        page.wait_for_selector(f"#graph #node-{step}.status-completed")
    assert page.locator("#node-crunch g.progress").count() == 0  # done: no bar
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator(".gantt-bar.st-completed").count() == 3
    # The attempt's captured logs.
    fetch_logs = page.locator('details.attempt[data-step="fetch"]')
    assert "fetching browser" in fetch_logs.inner_text()
    assert "fetched browser" in fetch_logs.inner_text()
    _screenshot(page, "execution")

    # Filter the list: the table updates in place and the URL follows.
    review = durable.start("web_review")
    wait_until(
        lambda: PendingInput.objects.filter(execution__workflow_id=review).exists(),
        timeout=20,
        message="the review workflow never asked for input",
    )
    page.goto(f"{web_server}/durable/")
    assert page.locator(f'tr[data-workflow-id="{wid}"]').count() == 1
    page.evaluate("window.__notReloaded = true")
    # A new execution appears on the open list, its progress and status follow it live.
    fresh = durable.start("web_steps", {"label": "live", "delay": 0.8})
    page.wait_for_selector(f'tr[data-workflow-id="{fresh}"]')
    pk = WorkflowExecution.objects.get(workflow_id=fresh).pk
    page.wait_for_selector(f"#exec-{pk}-progress progress")
    page.wait_for_selector(f'#exec-{pk}-status[data-status="completed"]')
    assert page.evaluate("window.__notReloaded") is True
    page.select_option("#id_status", "waiting")
    page.wait_for_selector(f'tr[data-workflow-id="{wid}"]', state="detached")
    assert page.locator(f'tr[data-workflow-id="{review}"]').count() == 1
    assert "status=waiting" in page.url
    assert page.evaluate("window.__notReloaded") is True
    _screenshot(page, "list")

    # Answer the form input; the workflow continues and the page shows it.
    page.click(f'tr[data-workflow-id="{review}"] a')
    page.wait_for_selector('[data-input="review"] form')
    page.fill("#id_input-amount", "5")
    page.check("#id_input-approved")
    page.click('[data-input="review"] button[type=submit]')
    page.wait_for_selector('#execution-status[data-status="completed"]')
    page.wait_for_selector('[data-step="after"][data-status="completed"]')
    assert '"amount": 5' in page.inner_text("#context-json")
    assert PendingInput.objects.get(execution__workflow_id=review).responded_by.username == "admin"

    # Cancel every waiting review in bulk: the confirmation counts them, acting reports.
    reviews = [durable.start("web_review") for _ in range(2)]
    wait_until(
        lambda: PendingInput.objects.filter(execution__workflow_id__in=reviews).count() == 2,
        timeout=20,
        message="the reviews never asked for input",
    )
    page.goto(f"{web_server}/durable/?status=waiting&workflow_name=web_review")
    assert page.locator("tr[data-workflow-id]").count() == 2
    page.evaluate("window.__notReloaded = true")
    page.click('.bulk-link[data-action="cancel"]')
    assert page.inner_text("#bulk-count") == "2"
    _screenshot(page, "bulk")
    page.click("#bulk-form button[type=submit]")
    page.wait_for_selector("#messages li:has-text('Cancelled 2 executions.')")
    page.wait_for_selector("#execution-table td.empty")  # the list refetched: none waits now
    assert page.evaluate("window.__notReloaded") is True
    assert {WorkflowExecution.objects.get(workflow_id=w).status for w in reviews} == {"cancelled"}

    page.goto(f"{web_server}/durable/metrics/")
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() == 4
    _screenshot(page, "metrics")


def test_a_missing_browser_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception):
        _require_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _require_browser()
