"""wait_for_input, run inline: schemas, validation that changes nothing, responses, timeouts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

import durable
from durable.models import PendingInput
from durable.testing import advance_time, run_until_idle
from tests.waits import workflows as wf
from tests.waits.support import parked, status, stored, the_input

pytestmark = pytest.mark.django_db

CHOICES = [{"value": 5, "label": "Very satisfied"}, {"value": 3, "label": "Neutral"}]


def asking(**ask: Any) -> str:
    """Start a workflow that asks for input `answer` and run it until it waits."""
    wid = durable.start(wf.AskInput, {"ask": ask})
    run_until_idle()
    assert status(wid) == "waiting", durable.get_execution(wid).error
    return wid


def test_a_free_text_input_is_pending_until_answered_then_returned_to_the_step() -> None:
    wid = asking(prompt="Anything to add?")
    row = the_input(wid)
    assert (row.input_name, row.step_name, row.status) == ("answer", "ask", "pending")
    assert (row.type, row.prompt, row.timeout_at) == ("free_text", "Anything to add?", None)

    returned = durable.provide_input(wid, "answer", {"any": ["json", 1]})
    assert returned.status == "completed"
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["answer"] == {"any": ["json", 1]}
    row.refresh_from_db()
    assert row.status == "completed"
    assert row.response == {"any": ["json", 1]}
    assert row.completed_at is not None
    assert row.responded_by_id is None


def test_the_form_schema_is_stored_with_the_pending_input() -> None:
    wid = asking(type="form", prompt="Pick your kit", fields=wf.FORM_FIELDS, timeout=3600)
    row = the_input(wid)
    assert row.type == "form"
    assert [f["name"] for f in row.fields] == [f["name"] for f in wf.FORM_FIELDS]
    assert [f["required"] for f in row.fields[:2]] == [True, False]
    assert row.timeout_at == parked(wid)[0].run_at


BAD_FORM_RESPONSES = [
    ({"notes": "x"}, "title", "required"),
    ({"title": ""}, "title", "required"),
    ({"title": "  \n\t "}, "title", "required"),
    ({"title": None}, "title", "required"),
    ({"title": "x" * 11}, "title", "at most 10 characters"),
    ({"title": 5}, "title", "must be text"),
    ({"title": "ok", "notes": "y" * 21}, "notes", "at most 20 characters"),
    ({"title": "ok", "notes": ["a"]}, "notes", "must be text"),
    ({"title": "ok", "amount": "abc"}, "amount", "is not a number"),
    ({"title": "ok", "amount": "NaN"}, "amount", "not a finite number"),
    ({"title": "ok", "amount": "Infinity"}, "amount", "not a finite number"),
    ({"title": "ok", "amount": True}, "amount", "must be a number"),
    # Bounded before any conversion: int(Decimal("1e1000000")) alone takes half a minute.
    ({"title": "ok", "amount": "1e1000000"}, "amount", "out of range"),
    ({"title": "ok", "amount": "1e5000"}, "amount", "out of range"),
    ({"title": "ok", "amount": "-1e-400"}, "amount", "out of range"),
    ({"title": "ok", "amount": 10**400}, "amount", "out of range"),
    ({"title": "ok", "amount": "9" * 101}, "amount", "at most 100 characters"),
    ({"title": "ok", "amount": "1e99999999999999999999"}, "amount", "out of range"),
    ({"title": "ok", "amount": "0x10"}, "amount", "is not a number"),
    ({"title": "ok", "amount": [1]}, "amount", "is not a number"),
    ({"title": "ok", "urgent": "maybe"}, "urgent", "must be true or false"),
    ({"title": "ok", "urgent": 2}, "urgent", "must be true or false"),
    ({"title": "ok", "laptop": "Dell"}, "laptop", "is not one of"),
    ({"title": "ok", "laptop": ["ThinkPad"]}, "laptop", "is not one of"),
    ({"title": "ok", "extras": ["mouse", "fax"]}, "extras", "must be a list of options"),
    ({"title": "ok", "extras": "mouse"}, "extras", "must be a list of options"),
    ({"title": "ok", "start": "2024-13-01"}, "start", "is not a date"),
    ({"title": "ok", "start": "tomorrow"}, "start", "is not a date"),
    ({"title": "ok", "start": 20240101}, "start", "is not a date"),
    ({"title": "ok", "colour": "red"}, "colour", "unknown field"),
]


@pytest.mark.parametrize(("response", "field", "problem"), BAD_FORM_RESPONSES)
def test_an_invalid_form_response_names_the_field_and_leaves_the_input_pending(
    response: dict[str, Any], field: str, problem: str
) -> None:
    wid = asking(type="form", fields=wf.FORM_FIELDS)
    before = stored(wid)

    with pytest.raises(ValidationError) as raised:
        durable.provide_input(wid, "answer", response)

    assert field in raised.value.message_dict
    assert problem in " ".join(raised.value.message_dict[field])
    assert stored(wid) == before
    assert the_input(wid).status == "pending"
    assert run_until_idle() == 0


def test_every_bad_field_of_a_form_response_is_reported_at_once() -> None:
    wid = asking(type="form", fields=wf.FORM_FIELDS)
    with pytest.raises(ValidationError) as raised:
        durable.provide_input(wid, "answer", {"amount": "x", "urgent": "x", "start": "x"})
    assert set(raised.value.message_dict) == {"title", "amount", "urgent", "start"}


@pytest.mark.parametrize("response", ["a string", ["title"], 7])
def test_a_form_response_that_is_not_an_object_is_refused(response: Any) -> None:
    wid = asking(type="form", fields=wf.FORM_FIELDS)
    before = stored(wid)
    with pytest.raises(ValidationError, match="must be an object"):
        durable.provide_input(wid, "answer", response)
    assert stored(wid) == before


def test_a_valid_form_response_is_cleaned_and_returned_to_the_step() -> None:
    wid = asking(type="form", fields=wf.FORM_FIELDS)
    durable.provide_input(
        wid,
        "answer",
        {
            "title": "Kit",
            "notes": "",
            "amount": " 12.50 ",
            "urgent": "yes",
            "laptop": "ThinkPad",
            "extras": ["dock", "mouse"],
            "start": "2024-02-29",
        },
    )
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["answer"] == {
        "title": "Kit",
        "amount": 12.5,
        "urgent": True,
        "laptop": "ThinkPad",
        "extras": ["dock", "mouse"],
        "start": "2024-02-29",
    }


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [("3", 3), (3, 3), ("-1.25", -1.25), (0, 0), ("1e3", 1000)],
)
def test_numbers_are_parsed(raw: Any, cleaned: Any) -> None:
    wid = asking(type="form", fields=[{"name": "n", "type": "number", "required": True}])
    durable.provide_input(wid, "answer", {"n": raw})
    assert the_input(wid).response == {"n": cleaned}


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [(True, True), (False, False), ("on", True), ("off", False), ("0", False), ("TRUE", True)],
)
def test_booleans_are_parsed_and_false_counts_as_an_answer(raw: Any, cleaned: bool) -> None:
    wid = asking(type="form", fields=[{"name": "b", "type": "boolean", "required": True}])
    durable.provide_input(wid, "answer", {"b": raw})
    assert the_input(wid).response == {"b": cleaned}


def test_a_required_multi_select_needs_at_least_one_option() -> None:
    fields = [{"name": "m", "type": "multi_select", "options": ["a", "b"], "required": True}]
    wid = asking(type="form", fields=fields)
    with pytest.raises(ValidationError) as raised:
        durable.provide_input(wid, "answer", {"m": []})
    assert raised.value.message_dict == {"m": ["this field is required"]}


@pytest.mark.parametrize("response", [4, "5", [5], None, True])
def test_a_single_choice_takes_exactly_one_of_its_values(response: Any) -> None:
    wid = asking(type="single_choice", choices=CHOICES)
    before = stored(wid)
    with pytest.raises(ValidationError) as raised:
        durable.provide_input(wid, "answer", response)
    assert "choice" in raised.value.message_dict
    assert stored(wid) == before


def test_a_choice_value_is_not_matched_by_a_boolean_equal_to_it() -> None:
    wid = asking(type="single_choice", choices=[1, 0])
    with pytest.raises(ValidationError):
        durable.provide_input(wid, "answer", True)
    durable.provide_input(wid, "answer", 1)
    assert the_input(wid).response == 1


@pytest.mark.parametrize("response", [5, [], [5, 4], "5", [True]])
def test_a_multi_choice_takes_a_non_empty_list_of_its_values(response: Any) -> None:
    wid = asking(type="multi_choice", choices=CHOICES)
    before = stored(wid)
    with pytest.raises(ValidationError) as raised:
        durable.provide_input(wid, "answer", response)
    assert "choice" in raised.value.message_dict
    assert stored(wid) == before


@pytest.mark.parametrize(
    ("ask", "response"),
    [
        ({"type": "single_choice", "choices": CHOICES}, 3),
        ({"type": "multi_choice", "choices": CHOICES}, [3, 5]),
        ({"type": "single_choice", "choices": ["yes", "no"]}, "no"),
    ],
)
def test_a_valid_choice_is_returned_to_the_step(ask: dict[str, Any], response: Any) -> None:
    wid = asking(**ask)
    durable.provide_input(wid, "answer", response)
    run_until_idle()
    assert durable.get_execution(wid).context["answer"] == response


def test_the_first_valid_response_wins_and_a_second_is_refused() -> None:
    wid = asking(type="single_choice", choices=CHOICES)
    with pytest.raises(ValidationError):
        durable.provide_input(wid, "answer", 4)  # an invalid one does not count
    durable.provide_input(wid, "answer", 5)
    before = stored(wid)

    with pytest.raises(durable.InvalidTransition, match="only the first response counts"):
        durable.provide_input(wid, "answer", 3)

    assert stored(wid) == before
    run_until_idle()
    assert durable.get_execution(wid).context["answer"] == 5


def test_the_responding_user_is_recorded() -> None:
    user = get_user_model().objects.create_user("ada", password="x")
    wid = asking()
    durable.provide_input(wid, "answer", "yes", user=user)
    assert the_input(wid).responded_by_id == user.pk


def test_input_for_a_name_nobody_waits_on_is_refused_and_changes_nothing() -> None:
    wid = asking()
    before = stored(wid)
    with pytest.raises(durable.PendingInputNotFound, match=r"pending inputs: answer"):
        durable.provide_input(wid, "other", "x")
    assert stored(wid) == before


def test_an_input_times_out_without_a_value_by_raising_wait_timeout() -> None:
    wid = asking(timeout=60)
    advance_time(timedelta(seconds=59))
    assert run_until_idle() == 0
    advance_time(timedelta(seconds=2))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.exceptions.WaitTimeout"
    assert execution.error["message"] == "input 'answer' timed out"
    assert the_input(wid).status == "timeout"
    with pytest.raises(durable.InvalidTransition):
        durable.provide_input(wid, "answer", "too late")


def test_an_input_times_out_with_a_value_by_returning_it() -> None:
    wid = asking(timeout=60, timeout_value="auto_reject")
    advance_time(timedelta(seconds=61))
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["answer"] == "auto_reject"
    row = the_input(wid)
    assert (row.status, row.response) == ("timeout", None)


def test_a_step_retried_after_an_input_timeout_asks_again() -> None:
    wid = durable.start(wf.AskInputRetried, {})
    run_until_idle()
    advance_time(timedelta(seconds=61))
    run_until_idle()

    assert status(wid) == "waiting"
    (task,) = parked(wid)
    assert task.attempt == 2
    rows = PendingInput.objects.filter(execution__workflow_id=wid).order_by("id")
    assert [r.status for r in rows] == ["timeout", "pending"]

    durable.provide_input(wid, "approval", "granted")
    run_until_idle()
    execution = durable.get_execution(wid)
    assert execution.status == "completed", execution.error
    assert execution.context["answer"] == "granted"


@pytest.mark.parametrize(
    ("ask", "problem"),
    [
        ({"type": "essay"}, "input type must be one of"),
        ({"type": "form"}, "a form input needs fields="),
        ({"type": "form", "fields": [{"name": "x", "type": "color"}]}, "field 'x': type must be"),
        ({"type": "form", "fields": [{"name": "x", "type": "select"}]}, "a select needs options"),
        (
            {"type": "form", "fields": [{"name": "x", "type": "multi_select", "options": []}]},
            "a multi_select needs options",
        ),
        ({"type": "form", "fields": [{"type": "text"}]}, "needs a non-empty 'name'"),
        ({"type": "form", "fields": [{"name": "x"}, {"name": "x"}]}, "must be unique"),
        (
            {"type": "form", "fields": [{"name": "x", "max_length": 0}]},
            "max_length must be an int >= 1",
        ),
        ({"type": "single_choice"}, "a single_choice input needs choices"),
        ({"type": "multi_choice", "choices": []}, "a multi_choice input needs choices"),
        ({"choices": [1, 2]}, "choices= only applies to choice inputs"),
        ({"fields": [{"name": "x"}]}, "fields= only applies to type='form'"),
        ({"type": "single_choice", "choices": [{"label": "x"}]}, "each choice needs a 'value'"),
        ({"timeout": -1}, "timeout must be a finite duration >= 0"),
        ({"timeout": "5"}, "timeout must be a timedelta or a number of seconds"),
    ],
)
def test_a_bad_schema_fails_the_step_clearly(ask: dict[str, Any], problem: str) -> None:
    wid = durable.start(wf.AskInput, {"ask": ask})
    run_until_idle()

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert problem in execution.error["message"]
    assert not PendingInput.objects.exists()


@pytest.mark.parametrize("bad", ["choice", "option"])
def test_a_schema_that_is_not_json_fails_the_step_clearly(bad: str) -> None:
    wid = durable.start(wf.AskUnstorable, {"bad": bad})
    run_until_idle(max_tasks=20)

    execution = durable.get_execution(wid)
    assert execution.status == "failed"
    assert "is not JSON" in execution.error["message"]
    assert not PendingInput.objects.exists()
