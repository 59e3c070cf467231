"""In real headless Chromium (daphne serving the dashboard): the retry form of a
compensated saga says it re-runs from the first compensated step, and does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

import durable
from durable.testing import run_until_idle
from tests.semantics_api.workflows import TripSaga
from tests.support.servers import daphne_server
from tests.web.test_browser import browser_page  # noqa: F401  (the Chromium page fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def dashboard(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """daphne serving testproject.asgi on the test database, with this package's workflows."""
    with daphne_server(tmp_path, "tests.semantics_api.workflows") as url:
        yield url


def test_retrying_a_compensated_saga_from_the_dashboard(dashboard, browser_page, tmp_path):  # noqa: F811
    page = browser_page
    User.objects.create_superuser("admin", password="admin-pw")
    decline = tmp_path / "decline"
    decline.touch()
    wid = durable.start(TripSaga, {"ledger": str(tmp_path / "l.txt"), "decline": str(decline)})
    run_until_idle()
    assert durable.get_execution(wid).status == "compensated"
    decline.unlink()

    page.goto(f"{dashboard}/durable/executions/{wid}/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#retry-from-step")
    options = page.locator("#retry-from-step option")
    assert options.all_inner_texts() == ["the first compensated step (book_flight)", "book_flight"]
    page.click(".retry-form button[type=submit]")
    page.wait_for_selector("#messages li")
    assert page.inner_text("#messages li") == (
        "Retrying from the first compensated step (book_flight)."
    )
    run_until_idle()
    assert durable.get_execution(wid).status == "completed"
    page.reload()
    page.wait_for_selector('#execution-status[data-status="completed"]')
