"""The demo's seeder starts workflows that show a human input (a form, then a choice), a
plain failure and a long step with progress, and each works on the dashboard."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

import durable
from durable.models import PendingInput, StepExecution, WorkflowExecution
from durable.testing import run_until_idle
from testproject.demo.management.commands.demo_seed import start_examples
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_seeder_starts_an_approval_a_failure_and_a_long_run():
    ids = start_examples()
    names = set(
        WorkflowExecution.objects.filter(workflow_id__in=ids).values_list(
            "workflow_name", flat=True
        )
    )
    assert {"expense_approval", "nightly_report", "rebuild_search_index"} <= names


def test_the_expense_approval_asks_for_a_form_then_a_choice(superuser):
    wid = durable.start("expense_approval", {"employee": "Ada"})
    run_until_idle()
    client = client_for(superuser)
    page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert "File the expense of Ada." in page
    assert "Amount (required)" in page
    assert "In euros, receipts included." in page
    assert "Answer by" in page
    expense = PendingInput.objects.get(execution__workflow_id=wid, input_name="expense")
    response = client.post(
        reverse("durable:respond", args=[wid, expense.pk]),
        {
            "input-description": "Train to Lyon",
            "input-amount": "84.50",
            "input-category": '"travel"',
            "input-spent_on": "2026-11-30",
        },
    )
    assert response.status_code == 302
    run_until_idle()
    decision = PendingInput.objects.get(execution__workflow_id=wid, input_name="decision")
    assert decision.type == "single_choice"
    assert "Approve 84.5 EUR for 'Train to Lyon'?" in decision.prompt
    page = client.get(reverse("durable:execution-detail", args=[wid])).content.decode()
    assert 'type="radio"' in page
    client.post(reverse("durable:respond", args=[wid, decision.pk]), {"input-choice": '"approve"'})
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert execution.result == {"decision": "approve", "amount": 84.5}


def test_the_nightly_report_fails_plainly(superuser):
    wid = durable.start("nightly_report")
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["message"] == "row 2: price 'n/a' is not a number"
    assert StepExecution.objects.filter(execution=execution, status="failed").count() == 2
    page = client_for(superuser).get(reverse("durable:execution-detail", args=[wid]))
    assert 'data-step="publish" data-status="skipped"' in page.content.decode()


def test_the_search_index_rebuild_reports_progress():
    wid = durable.start("rebuild_search_index", {"documents": 60, "seconds": 0.3})
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed"
    assert execution.context["alias"] == "search-live"
    reindex = StepExecution.objects.get(execution=execution, step="reindex")
    assert reindex.progress == {"done": 60, "total": 60}


def test_the_demo_setup_creates_an_operator_who_is_not_staff():
    call_command("demo_setup", stdout=StringIO())
    call_command("demo_setup", stdout=StringIO())  # again: nothing twice
    operator = User.objects.get(username="operator")
    assert not operator.is_staff
    assert operator.has_perm("durable.view_dashboard")
    assert operator.has_perm("durable.operate")
    assert operator.has_perm("durable.respond_pendinginput")
    client = Client()
    response = client.post("/durable/login/", {"username": "operator", "password": "operator"})
    assert response.status_code == 302
    assert client.get(reverse("durable:execution-list")).status_code == 200
