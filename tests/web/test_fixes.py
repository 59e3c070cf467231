"""The dashboard's and the admin's bug fixes of round 2, over HTTP (the browser's share is
in test_browser_fixes.py)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

import durable
from durable.exceptions import InvalidTransition
from durable.models import PendingInput, StepExecution, WorkflowExecution
from durable.testing import run_until_idle
from tests.web import fault_workflows as fw
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _run(workflow: type, data: dict[str, object] | None = None) -> WorkflowExecution:
    wid = durable.start(workflow, data or {})
    run_until_idle()
    return WorkflowExecution.objects.get(workflow_id=wid)


def _detail(client, execution: WorkflowExecution, **extra: str) -> str:
    url = reverse("durable:execution-detail", args=[execution.workflow_id])
    return client.get(url, **extra).content.decode()


# -- retry ------------------------------------------------------------------------------


def test_retrying_a_completed_execution_without_a_step_is_refused_and_changes_nothing():
    execution = _run(WebSteps)
    attempts = StepExecution.objects.count()
    with pytest.raises(InvalidTransition, match="completed: no step failed"):
        durable.retry(execution.workflow_id)
    assert durable.get_execution(execution.workflow_id).status == "completed"
    assert StepExecution.objects.count() == attempts


def test_a_completed_execution_can_still_be_run_again_from_a_named_step():
    execution = _run(WebSteps)
    durable.retry(execution.workflow_id, from_step="crunch")
    run_until_idle()
    assert durable.get_execution(execution.workflow_id).status == "completed"
    assert StepExecution.objects.filter(step="crunch").count() == 2
    assert StepExecution.objects.filter(step="fetch").count() == 1


def test_the_dashboard_offers_no_retry_of_the_failed_step_on_completed_executions(superuser):
    client = client_for(superuser)
    page = _detail(client, _run(WebSteps))
    assert "the failed step" not in page
    assert 'name="from_step" id="retry-from-step" required' in page
    assert "Run again from" in page
    failed = _detail(client, _run(fw.WebFails))
    assert '<option value="">the failed step</option>' in failed


def test_the_dashboard_reports_a_refused_retry_of_a_completed_execution(superuser):
    execution = _run(WebSteps)
    response = client_for(superuser).post(
        reverse("durable:retry", args=[execution.workflow_id]), {"from_step": ""}, follow=True
    )
    assert "Could not retry" in response.content.decode()
    assert durable.get_execution(execution.workflow_id).status == "completed"


# -- the admin --------------------------------------------------------------------------


def test_the_admin_cannot_create_executions(superuser):
    client = client_for(superuser)
    changelist = client.get(reverse("admin:durable_workflowexecution_changelist"))
    assert reverse("admin:durable_workflowexecution_add") not in changelist.content.decode()
    response = client.post(reverse("admin:durable_workflowexecution_add"), {"status": "pending"})
    assert response.status_code == 403
    assert not WorkflowExecution.objects.exists()


def test_deleting_a_pending_input_in_the_admin_is_refused_with_a_message(superuser):
    execution = _run(WebReview)
    pending = PendingInput.objects.get()
    client = client_for(superuser)
    change = reverse("admin:durable_pendinginput_change", args=[pending.pk])
    assert reverse("admin:durable_pendinginput_delete", args=[pending.pk]) not in (
        client.get(change).content.decode()
    )
    delete = reverse("admin:durable_pendinginput_delete", args=[pending.pk])
    for response in (client.get(delete), client.post(delete, {"post": "yes"})):
        assert response.status_code == 302
        assert response["Location"] == change
    page = client.get(change).content.decode()
    assert "cannot be deleted: answer it, or cancel its execution" in page
    assert PendingInput.objects.get().status == "pending"
    assert durable.get_execution(execution.workflow_id).status == "waiting"


def test_bulk_deleting_pending_inputs_in_the_admin_is_refused(superuser):
    _run(WebReview)
    answered = _run(WebReview)
    durable.provide_input(answered.workflow_id, "review", {"amount": 1})
    run_until_idle()
    client = client_for(superuser)
    url = reverse("admin:durable_pendinginput_changelist")
    selected = [str(pk) for pk in PendingInput.objects.values_list("pk", flat=True)]
    confirm = client.post(url, {"action": "delete_selected", "_selected_action": selected})
    html = confirm.content.decode()
    assert "answer them or cancel their execution instead" in html
    assert 'name="post"' not in html  # no "Yes, I'm sure" button
    forced = client.post(
        url, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )
    assert forced.status_code == 403
    assert PendingInput.objects.count() == 2
    # Answered inputs are history: they may go.
    done = str(PendingInput.objects.get(status="completed").pk)
    client.post(url, {"action": "delete_selected", "_selected_action": [done], "post": "yes"})
    assert list(PendingInput.objects.values_list("status", flat=True)) == ["pending"]


# -- never-run steps --------------------------------------------------------------------


def test_steps_that_never_ran_show_as_skipped_on_finished_runs(superuser):
    page = _detail(client_for(superuser), _run(fw.WebFails))
    assert re.search(r'data-step="never_runs" data-status="skipped"', page)
    assert re.search(r'data-step="explode" data-status="failed"', page)
    # ... and as pending while the run can still reach them, parked by a deploy included.
    execution = _run(WebReview)
    assert re.search(
        r'data-step="after" data-status="pending"', _detail(client_for(superuser), execution)
    )
    WorkflowExecution.objects.filter(pk=execution.pk).update(status="needs_attention")
    parked = _detail(client_for(superuser), execution)
    assert re.search(r'data-step="after" data-status="pending"', parked)


# -- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"status": "bogus"}, "'bogus'"),
        ({"created_after": "not-a-date"}, "'not-a-date'"),
        ({"queue": "nowhere"}, "'nowhere'"),
        ({"workflow_name": "no_such_flow"}, "'no_such_flow'"),
        ({"q": "x" * 300}, "Id"),
    ],
)
def test_an_invalid_filter_shows_no_executions_and_says_what_it_rejected(superuser, query, named):
    _run(WebSteps)
    client = client_for(superuser)
    url = reverse("durable:execution-list")
    response = client.get(url, query)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Filter rejected:" in html
    assert named in unescape(html)
    assert "data-workflow-id=" not in html
    partial = client.get(url, query, **HTMX)
    assert partial.status_code == 200  # htmx swaps 2xx only
    assert "Filter rejected:" in partial.content.decode()
    assert "data-workflow-id=" not in partial.content.decode()


def test_valid_filters_still_filter(superuser):
    done = _run(WebSteps)
    waiting = _run(WebReview)
    html = client_for(superuser).get(reverse("durable:execution-list"), {"status": "waiting"})
    text = html.content.decode()
    assert html.status_code == 200
    assert waiting.workflow_id in text
    assert done.workflow_id not in text
    assert "Filter rejected" not in text


# -- stale approval forms ---------------------------------------------------------------


def _answered() -> tuple[WorkflowExecution, PendingInput]:
    execution = _run(WebReview)
    pending = PendingInput.objects.get()
    return execution, pending


def test_a_stale_dashboard_form_says_the_input_was_already_answered(superuser, staff):
    execution, pending = _answered()
    durable.provide_input(execution.workflow_id, "review", {"amount": 2}, user=superuser)
    staff.user_permissions.add(Permission.objects.get(codename="respond_pendinginput"))
    client = client_for(staff)
    url = reverse("durable:respond", args=[execution.workflow_id, pending.pk])
    partial = client.post(url, {"input-amount": "3"}, **HTMX)
    assert partial.status_code == 200
    assert "&#x27;review&#x27; was already answered by root" in partial.content.decode()
    assert 'id="execution"' in partial.content.decode()
    full = client.post(url, {"input-amount": "3"})
    assert full.status_code == 302
    assert "was already answered by root" in _detail(client, execution)
    assert PendingInput.objects.get().response == {"amount": 2}


def test_a_form_of_an_input_that_no_longer_exists_says_so(superuser):
    execution, pending = _answered()
    url = reverse("durable:respond", args=[execution.workflow_id, pending.pk + 1000])
    response = client_for(superuser).post(url, {"input-amount": "3"}, **HTMX)
    assert response.status_code == 200
    assert "This input no longer exists" in response.content.decode()


def test_a_stale_admin_form_says_the_input_was_already_answered(superuser):
    execution, pending = _answered()
    durable.provide_input(execution.workflow_id, "review", {"amount": 2}, user=superuser)
    url = reverse("admin:durable_pendinginput_change", args=[pending.pk])
    response = client_for(superuser).post(
        url, {"_respond": "Respond", "input-amount": "3"}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "was already answered by root; your response was not recorded." in html
    assert 'class="messagelist"' in html  # the admin's own, styled message list
    assert PendingInput.objects.get().response == {"amount": 2}


# -- smaller faults ---------------------------------------------------------------------


def test_each_failed_attempt_prints_its_error_once(superuser):
    page = _detail(client_for(superuser), _run(fw.WebFails, {"why": "because"}))
    # The attempts region alone (the history below names each failure too).
    attempts = page[page.index('id="region-attempts"') :].split("</section>")[0]
    assert StepExecution.objects.filter(status="failed").count() == 2
    assert attempts.count("Traceback (most recent call last)") == 2
    assert attempts.count("ValueError: boom because") == 2


def test_the_result_is_shown_as_json(superuser):
    page = _detail(client_for(superuser), _run(fw.WebResult))
    region = page[page.index('id="result-json"') :].split("</section>")[0]
    text = unescape(re.sub(r"<[^>]+>", "", region))
    assert '"approved"' in text
    assert "true" in text
    assert "null" in text
    assert "True" not in text  # not a Python repr
    assert "None" not in text


def test_required_fields_and_the_deadline_are_shown(superuser):
    client = client_for(superuser)
    form = _detail(client, _run(WebReview))
    assert "Amount (required)" in form
    assert "Note (required)" not in form
    assert "Note" in form
    choice = _run(fw.WebChoice)
    page = _detail(client, choice)
    assert "Answer by" in page
    assert "then it times out" in page
    deadline = PendingInput.objects.get(execution=choice).timeout_at
    assert deadline is not None
    assert deadline.strftime("%Y-%m-%d %H:%M") in page
    admin = client.get(
        reverse(
            "admin:durable_pendinginput_change",
            args=[PendingInput.objects.get(execution=choice).pk],
        )
    ).content.decode()
    assert "Answer by" in admin


def test_the_metrics_averages_have_units(superuser):
    _run(WebSteps)
    html = client_for(superuser).get(reverse("durable:metrics")).content.decode()
    cells = re.findall(r'<td class="duration">([^<]*)</td>', html)
    filled = [cell for cell in cells if cell]
    assert filled
    assert all(cell.endswith(" ms") for cell in filled)
    assert "Average duration" in html
