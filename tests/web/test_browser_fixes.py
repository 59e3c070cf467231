# ruff: noqa: F811  (the fixtures imported from test_browser are parameters here)
"""The round-2 fixes that only a browser shows: layout, live cells, htmx errors, forms
answered after their socket went away. Real Chromium against daphne; the workflows run
inline in the test process (no worker needed)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User

import durable
from durable.models import PendingInput, WorkflowExecution
from durable.testing import run_until_idle
from tests.support.workers import wait_until
from tests.web.test_browser import _screenshot, browser_page, web_server  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# htmx logs an out-of-band fragment without a target as an error, and fires this event.
COUNT_HTMX_ERRORS = """
window.__htmxErrors = [];
document.addEventListener('htmx:oobErrorNoTarget', e => window.__htmxErrors.push('oob'));
document.addEventListener('htmx:swapError', e => window.__htmxErrors.push('swap'));
"""
# A page whose WebSocket never opens: what a page looks like once its socket is gone.
NO_WEBSOCKET = """
window.WebSocket = class {
  constructor() { this.readyState = 0; }
  send() {} close() {} addEventListener() {} removeEventListener() {}
};
"""


def _log_in(page, server: str) -> None:
    User.objects.create_superuser("admin", password="admin-pw")
    page.goto(f"{server}/durable/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pw")
    page.click("[type=submit]")
    page.wait_for_selector("#execution-table")


def _waiting(workflow: str) -> str:
    wid = durable.start(workflow)
    run_until_idle()
    assert PendingInput.objects.filter(execution__workflow_id=wid, status="pending").exists()
    return wid


def test_radio_buttons_sit_beside_their_labels_and_the_deadline_shows(web_server, browser_page):
    page = browser_page
    _log_in(page, web_server)
    wid = _waiting("web_choice")
    page.goto(f"{web_server}/durable/executions/{wid}/")
    radio = page.locator('[data-input="decision"] input[type=radio]').first
    label = page.locator('[data-input="decision"] label:has(input[type=radio])').first
    box, text = radio.bounding_box(), label.bounding_box()
    assert box is not None
    assert text is not None
    # On one line: the label is hardly taller than the button, and starts at it.
    assert text["height"] < box["height"] + 12
    assert abs((box["y"] + box["height"] / 2) - (text["y"] + text["height"] / 2)) < 6
    assert box["x"] - text["x"] < 4
    assert "Approve" in label.inner_text()
    assert page.is_visible('[data-input="decision"] .deadline')
    assert "Answer by" in page.inner_text('[data-input="decision"] .deadline')
    _screenshot(page, "fixes-single-choice")


def test_metrics_chart_labels_are_no_larger_than_the_page_text(web_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1440, "height": 1000})
    _log_in(page, web_server)
    durable.start("web_steps")
    run_until_idle()
    page.goto(f"{web_server}/durable/metrics/")
    page.wait_for_selector("svg.chart text")
    sizes = page.evaluate(
        """() => {
          const body = parseFloat(getComputedStyle(document.body).fontSize);
          const heights = [...document.querySelectorAll('svg.chart text')]
            .map(t => t.getBoundingClientRect().height).filter(h => h > 0);
          return {body, tallest: Math.max(...heights)};
        }"""
    )
    # A line box is about 1.2 font sizes tall: scaled up twice, it would be 2.4.
    assert sizes["tallest"] <= 1.3 * sizes["body"], sizes
    averages = page.locator("td.duration").all_inner_texts()
    assert any(text.endswith(" ms") for text in averages)


def test_live_list_fills_durations_in_and_raises_no_htmx_errors(web_server, browser_page):
    page = browser_page
    page.add_init_script(COUNT_HTMX_ERRORS)
    _log_in(page, web_server)
    shown = durable.start("web_steps", {"label": "shown"})
    page.goto(f"{web_server}/durable/?workflow_name=web_steps")
    pk = WorkflowExecution.objects.get(workflow_id=shown).pk
    page.wait_for_selector(f"#exec-{pk}-status")
    assert page.inner_text(f"#exec-{pk}-duration") == ""
    # Executions the filtered page does not show change too: their cells must not be sent.
    hidden = [durable.start("web_result") for _ in range(3)]
    run_until_idle()
    page.wait_for_selector(f'#exec-{pk}-status[data-status="completed"]')
    wait_until(
        lambda: page.inner_text(f"#exec-{pk}-duration").endswith(" ms"),
        timeout=20,
        message="the finished row's duration stayed blank",
    )
    assert all(WorkflowExecution.objects.get(workflow_id=w).is_finished for w in hidden)
    page.wait_for_timeout(1500)  # a few more frames of the socket
    assert page.evaluate("window.__htmxErrors") == []


def test_a_stale_input_form_says_it_was_already_answered(web_server, browser_page):
    page = browser_page
    page.add_init_script(NO_WEBSOCKET)
    _log_in(page, web_server)
    wid = _waiting("web_review")
    page.goto(f"{web_server}/durable/executions/{wid}/")
    page.wait_for_selector('[data-input="review"] form')
    # Someone else answers; this page, without its socket, still shows the form.
    durable.provide_input(wid, "review", {"amount": 1})
    page.fill("#id_input-amount", "5")
    page.click('[data-input="review"] button[type=submit]')
    page.wait_for_selector("#messages li.error")
    assert "was already answered" in page.inner_text("#messages")
    assert page.locator('[data-input="review"] form').count() == 0
    assert PendingInput.objects.get(execution__workflow_id=wid).response == {"amount": 1}


def test_a_rejected_filter_is_named_and_shows_nothing(web_server, browser_page):
    page = browser_page
    _log_in(page, web_server)
    durable.start("web_steps")
    page.goto(f"{web_server}/durable/?status=bogus&queue=nowhere")
    errors = page.inner_text(".filter-errors")
    assert "'bogus'" in errors
    assert "'nowhere'" in errors
    assert page.locator("tr[data-workflow-id]").count() == 0


def test_an_operator_who_is_not_staff_signs_in_and_answers_an_input(web_server, browser_page):
    page = browser_page
    approvers = Group.objects.create(name="Approvers")
    approvers.permissions.set(
        Permission.objects.filter(
            content_type__app_label="durable",
            codename__in=["view_dashboard", "respond_pendinginput"],
        )
    )
    User.objects.create_user("approver", password="approver-pw").groups.add(approvers)
    wid = _waiting("web_choice")
    page.goto(f"{web_server}/durable/executions/{wid}/")
    assert "/durable/login/" in page.url  # the dashboard's own page, not the admin's
    page.fill("#id_username", "approver")
    page.fill("#id_password", "approver-pw")
    _screenshot(page, "sign-in")
    page.click("#sign-in [type=submit]")
    page.wait_for_selector('[data-input="decision"] form')
    assert page.locator('form[action$="/cancel/"]').count() == 0  # may answer, not operate
    page.check('[data-input="decision"] input[type=radio][value="\\"yes\\""]')
    page.click('[data-input="decision"] button[type=submit]')
    page.wait_for_selector("#messages li.success")
    assert page.inner_text("#messages") == "Answered 'decision'."
    answered = PendingInput.objects.get(execution__workflow_id=wid)
    assert answered.status == "completed"
    assert answered.responded_by.username == "approver"
    page.click(".sign-out button")
    page.wait_for_selector("#sign-in")


def test_finished_execution_pages_show_what_they_should(web_server, browser_page):
    """A completed run offers a re-run from a named step, not a retry of "the failed step";
    a failed run prints each attempt's error once and shows never-run steps as skipped;
    results are JSON; no htmx error while the page is live."""
    page = browser_page
    page.add_init_script(COUNT_HTMX_ERRORS)
    _log_in(page, web_server)
    completed = durable.start("web_result")
    failed = durable.start("web_fault_fails", {"why": "in the browser"})
    run_until_idle()

    page.goto(f"{web_server}/durable/executions/{completed}/")
    options = page.locator("#retry-from-step option").all_inner_texts()
    assert "the failed step" not in options
    assert "compute" in options
    assert page.inner_text('label[for="retry-from-step"]') == "Run again from"
    assert '"approved": true' in page.inner_text("#result-json")

    page.goto(f"{web_server}/durable/executions/{failed}/")
    assert page.locator("#retry-from-step option").first.inner_text() == "the failed step"
    assert page.get_attribute('li[data-step="never_runs"]', "data-status") == "skipped"
    assert page.inner_text('li[data-step="never_runs"] .st') == "skipped"
    attempts = page.inner_text("#region-attempts")
    assert attempts.count("ValueError: boom in the browser") == 2  # two attempts, once each
    _screenshot(page, "fixes-failed-execution")
    page.wait_for_timeout(1500)  # a few frames of the live socket
    assert page.evaluate("window.__htmxErrors") == []


def test_the_admin_neither_adds_executions_nor_deletes_pending_inputs(web_server, browser_page):
    page = browser_page
    _log_in(page, web_server)
    wid = _waiting("web_review")
    page.goto(f"{web_server}/admin/durable/workflowexecution/")
    page.wait_for_selector("#result_list")
    assert page.locator('a[href$="/workflowexecution/add/"]').count() == 0
    pending = PendingInput.objects.get(execution__workflow_id=wid)
    page.goto(f"{web_server}/admin/durable/pendinginput/{pending.pk}/change/")
    page.wait_for_selector("#respond")
    assert page.locator("a.deletelink").count() == 0
    page.goto(f"{web_server}/admin/durable/pendinginput/{pending.pk}/delete/")
    page.wait_for_selector("ul.messagelist li.error")
    assert "cannot be deleted" in page.inner_text("ul.messagelist")
    assert PendingInput.objects.filter(pk=pending.pk, status="pending").exists()
