"""The dashboard over HTTP: access rules, partials, escaping, filters and actions."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

import durable
from durable.models import PendingInput, StepExecution, WorkflowExecution
from durable.testing import run_until_idle
from tests.web.conftest import client_for
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting() -> WorkflowExecution:
    """An execution parked on the `review` form input."""
    wid = durable.start(WebReview)
    run_until_idle()
    return WorkflowExecution.objects.get(workflow_id=wid)


def _routes(execution: WorkflowExecution) -> dict[str, tuple[str, str, dict[str, str]]]:
    wid = execution.workflow_id
    pending = PendingInput.objects.get(execution=execution)
    return {
        "list": ("get", reverse("durable:execution-list"), {}),
        "detail": ("get", reverse("durable:execution-detail", args=[wid]), {}),
        "region": ("get", reverse("durable:execution-region", args=[wid, "inputs"]), {}),
        "metrics": ("get", reverse("durable:metrics"), {}),
        "start": ("post", reverse("durable:start-workflow"), {"workflow": "web_steps"}),
        "event": ("post", reverse("durable:send-event", args=[wid]), {"event": "ping"}),
        "respond": (
            "post",
            reverse("durable:respond", args=[wid, pending.pk]),
            {"input-amount": "3", "input-approved": "on"},
        ),
        "cancel": ("post", reverse("durable:cancel", args=[wid]), {}),
    }


def _call(user, route: tuple[str, str, dict[str, str]]):
    method, url, data = route
    client = client_for(user)
    return client.get(url) if method == "get" else client.post(url, data)


@pytest.mark.parametrize(
    "name", ["list", "detail", "region", "metrics", "start", "event", "respond", "cancel"]
)
def test_anonymous_users_are_sent_to_the_login_page(waiting, name):
    response = _call(None, _routes(waiting)[name])
    assert response.status_code == 302
    assert "/durable/login/" in response["Location"]


@pytest.mark.parametrize(
    "name", ["list", "detail", "region", "metrics", "start", "event", "respond", "cancel"]
)
def test_users_who_are_not_staff_are_refused(waiting, outsider, name):
    assert _call(outsider, _routes(waiting)[name]).status_code == 403


@pytest.mark.parametrize("name", ["list", "detail", "region", "metrics"])
def test_staff_without_permissions_may_watch(waiting, viewer, name):
    assert _call(viewer, _routes(waiting)[name]).status_code == 200


@pytest.mark.parametrize("name", ["start", "event", "respond", "cancel"])
def test_staff_without_permissions_may_not_act(waiting, viewer, name):
    assert _call(viewer, _routes(waiting)[name]).status_code == 403
    assert WorkflowExecution.objects.count() == 1
    assert PendingInput.objects.get().status == "pending"


def test_staff_without_the_respond_permission_cannot_answer_inputs(waiting, staff):
    routes = _routes(waiting)
    assert _call(staff, routes["respond"]).status_code == 403
    assert PendingInput.objects.get().status == "pending"
    page = client_for(staff).get(routes["detail"][1]).content.decode()
    assert "You do not have permission to respond" in page
    assert _call(staff, routes["event"]).status_code == 302
    assert _call(staff, routes["cancel"]).status_code == 302
    assert WorkflowExecution.objects.get().status == "cancelled"


def test_superuser_answers_an_input_and_is_recorded_as_the_responder(waiting, superuser):
    response = _call(superuser, _routes(waiting)["respond"])
    assert response.status_code == 302
    pending = PendingInput.objects.get()
    assert pending.status == "completed"
    assert pending.responded_by == superuser
    assert pending.response == {"approved": True, "amount": 3}
    run_until_idle()
    execution = WorkflowExecution.objects.get()
    assert execution.status == "completed"
    assert execution.context["review"] == {"approved": True, "amount": 3}


def test_an_invalid_response_shows_the_errors_on_the_form_and_changes_nothing(waiting, superuser):
    route = _routes(waiting)["respond"]
    response = client_for(superuser).post(route[1], {"input-note": "x" * 30, "input-size": '"xl"'})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page  # amount
    assert "Ensure this value has at most 20 characters" in page
    assert "Select a valid choice" in page
    assert PendingInput.objects.get().status == "pending"


def test_superuser_starts_a_workflow_from_the_list(superuser):
    response = client_for(superuser).post(
        reverse("durable:start-workflow"),
        {"workflow": "web_steps", "input": '{"label": "x"}', "queue": ""},
    )
    assert response.status_code == 302
    execution = WorkflowExecution.objects.get()
    assert execution.workflow_name == "web_steps"
    assert execution.input == {"label": "x"}
    assert response["Location"] == reverse("durable:execution-detail", args=[execution.workflow_id])


def test_starting_with_input_that_is_not_a_json_object_is_refused(superuser):
    response = client_for(superuser).post(
        reverse("durable:start-workflow"), {"workflow": "web_steps", "input": "[1, 2"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.content.decode()
    assert not WorkflowExecution.objects.exists()


def test_htmx_requests_get_the_partial_and_responses_vary_on_hx_request(superuser):
    durable.start(WebSteps)
    client = client_for(superuser)
    full = client.get(reverse("durable:execution-list"))
    partial = client.get(reverse("durable:execution-list"), headers={"HX-Request": "true"})
    assert "<html" in full.content.decode()
    assert "{#" not in full.content.decode()  # template comments stay in the template
    assert "<html" not in partial.content.decode()
    assert 'id="execution-table"' in partial.content.decode()
    for response in (full, partial):
        assert "HX-Request" in response["Vary"]
    restore = client.get(
        reverse("durable:execution-list"),
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.content.decode()


def test_the_list_filters_by_status_workflow_and_id(superuser):
    done = durable.start(WebSteps)
    run_until_idle()
    waiting = durable.start(WebReview)
    run_until_idle()
    client = client_for(superuser)
    url = reverse("durable:execution-list")

    def ids(**params):
        page = client.get(url, params, headers={"HX-Request": "true"}).content.decode()
        return {wid for wid in (done, waiting) if wid in page}

    assert ids() == {done, waiting}
    assert ids(status="completed") == {done}
    assert ids(workflow_name="web_review") == {waiting}
    assert ids(q=waiting[:8]) == {waiting}
    assert ids(created_after="2000-01-01T00:00", created_before="2000-01-02T00:00") == set()


def test_context_values_are_escaped(superuser):
    wid = durable.start(WebSteps, {"label": "<script>alert(1)</script>"})
    run_until_idle()
    page = client_for(superuser).get(reverse("durable:execution-detail", args=[wid]))
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_execution_page_shows_steps_timeline_and_logs(superuser):
    wid = durable.start(WebSteps, {"label": "lbl"})
    run_until_idle()
    html = (
        client_for(superuser).get(reverse("durable:execution-detail", args=[wid])).content.decode()
    )
    for name in ("fetch", "crunch", "finish"):
        assert f'data-step="{name}" data-status="completed"' in html
    assert "gantt-bar st-completed" in html
    assert "fetching lbl" in html  # print() captured
    assert "fetched lbl" in html  # logging captured


def test_the_metrics_page_draws_inline_svg_charts(superuser):
    durable.start(WebSteps)
    run_until_idle()
    html = client_for(superuser).get(reverse("durable:metrics")).content.decode()
    assert html.count("<svg") >= 4
    assert "web_steps" in html
    assert '<script src="http' not in html


def _reporting(done: int, total: int) -> WorkflowExecution:
    """An execution whose `crunch` step is running and has reported done / total."""
    wid = durable.start(WebSteps)
    execution = WorkflowExecution.objects.get(workflow_id=wid)
    execution.status = "running"
    execution.current_step = "crunch"
    execution.save()
    StepExecution.objects.create(
        execution=execution,
        step="crunch",
        status="running",
        started_at=timezone.now(),
        progress={"done": done, "total": total},
    )
    return execution


def test_the_list_shows_progress_of_running_steps_and_foreach_blocks(superuser):
    reporting = _reporting(1, 4)
    fanned = WorkflowExecution.objects.get(workflow_id=durable.start(WebSteps))
    fanned.fanouts = {"f1": {"block": "items", "total": 5, "done": 2}}
    fanned.save()
    plain = WorkflowExecution.objects.get(workflow_id=durable.start(WebSteps))
    html = client_for(superuser).get(reverse("durable:execution-list")).content.decode()

    def cell(execution: WorkflowExecution) -> str:
        return html.split(f'id="exec-{execution.pk}-progress">')[1].split("</span>")[0]

    assert '<progress max="100" value="25">' in cell(reporting)
    assert '<progress max="100" value="40">' in cell(fanned)
    assert "<progress" not in cell(plain)


def test_the_graph_draws_a_progress_bar_on_the_running_step(superuser):
    execution = _reporting(3, 4)
    html = (
        client_for(superuser)
        .get(reverse("durable:execution-detail", args=[execution.workflow_id]))
        .content.decode()
    )
    node = html.split('id="node-crunch"')[1].split("</g></g>")[0]
    assert 'class="progress" data-done="3" data-total="4"' in node
    assert 'class="progress"' not in html.split('id="node-fetch"')[1].split("</g>")[0]


def test_htmx_start_redirects_the_browser_or_returns_the_form_with_errors(superuser):
    client = client_for(superuser)
    url = reverse("durable:start-workflow")
    hx = {"HX-Request": "true"}
    bad = client.post(url, {"workflow": "web_steps", "input": "[1"}, headers=hx)
    assert bad.status_code == 200  # htmx swaps 2xx only
    assert 'id="start"' in bad.content.decode()
    assert "not valid JSON" in bad.content.decode()
    assert "<html" not in bad.content.decode()
    assert not WorkflowExecution.objects.exists()

    good = client.post(url, {"workflow": "web_steps", "input": "{}"}, headers=hx)
    wid = WorkflowExecution.objects.get().workflow_id
    assert good["HX-Redirect"] == reverse("durable:execution-detail", args=[wid])


def test_htmx_answers_get_the_page_body_with_errors_or_the_messages(waiting, superuser):
    route = _routes(waiting)["respond"]
    client = client_for(superuser)
    hx = {"HX-Request": "true"}
    bad = client.post(route[1], {"input-note": "x"}, headers=hx)
    assert bad.status_code == 200
    assert "<html" not in bad.content.decode()
    assert 'id="execution"' in bad.content.decode()
    assert "This field is required." in bad.content.decode()

    good = client.post(route[1], route[2], headers=hx, follow=True)
    html = good.content.decode()
    assert "<html" not in html  # the redirect is followed as an htmx request
    assert 'id="messages" hx-swap-oob="true"' in html
    assert "Answered &#x27;review&#x27;." in html


@pytest.mark.parametrize("name", ["cancel", "event", "respond"])
def test_execution_page_actions_post_over_htmx_and_keep_the_csrf_token(waiting, superuser, name):
    html = (
        client_for(superuser)
        .get(reverse("durable:execution-detail", args=[waiting.workflow_id]))
        .content.decode()
    )
    url = _routes(waiting)[name][1]
    form = html.split(f'action="{url}"')[1].split("</form>")[0]
    assert f'hx-post="{url}"' in form
    assert 'name="csrfmiddlewaretoken"' in form
