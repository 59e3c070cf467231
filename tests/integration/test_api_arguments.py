"""Every bad argument of the public API gets the documented exception, naming the argument,
and changes no table (the database would otherwise answer with DataError,
UnicodeEncodeError, RecursionError or a bare ValueError, some after part of the work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

import durable
from durable.testing import run_until_idle
from tests.web.workflows import WebReview, WebSteps

pytestmark = pytest.mark.django_db

NUL = "abc\x00def"
SURROGATE = "abc\ud800def"
LONG_ID = "x" * 10_000


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = _deep(10_000)
HUGE = 10**5000


def _tables() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the app, to prove a refused call wrote nothing."""
    return {
        model.__name__: sorted(
            (dict(row) for row in model.objects.values()), key=lambda row: str(row.get("id"))
        )
        for model in apps.get_app_config("durable").get_models()
    }


@pytest.fixture
def waiting() -> str:
    """An execution parked on its `review` form input (amount required, note text)."""
    wid = durable.start(WebReview)
    run_until_idle()
    return wid


Call = Callable[[str], object]

# (what is wrong, the call given a waiting execution's id, exception, words of its message)
BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    # Workflow ids: the type is wrong, or no execution can have it.
    ("id with NUL", lambda w: durable.get_execution(NUL), durable.ExecutionNotFound, "NUL"),
    (
        "id with a lone surrogate",
        lambda w: durable.get_execution(SURROGATE),
        durable.ExecutionNotFound,
        "surrogate",
    ),
    (
        "10,000-character id",
        lambda w: durable.get_execution(LONG_ID),
        durable.ExecutionNotFound,
        "workflow_id must be 1 to 64 characters",
    ),
    ("empty id", lambda w: durable.get_execution(""), durable.ExecutionNotFound, "workflow_id"),
    ("id that is an int", lambda w: durable.get_execution(7), TypeError, "workflow_id"),  # type: ignore[arg-type]
    ("cancel, id with NUL", lambda w: durable.cancel(NUL), durable.ExecutionNotFound, "NUL"),
    (
        "send_event, id with a surrogate",
        lambda w: durable.send_event(SURROGATE, "go"),
        durable.ExecutionNotFound,
        "surrogate",
    ),
    (
        "provide_input, long id",
        lambda w: durable.provide_input(LONG_ID, "review", {"amount": 1}),
        durable.ExecutionNotFound,
        "workflow_id",
    ),
    ("resume, id with NUL", lambda w: durable.resume(NUL), durable.ExecutionNotFound, "NUL"),
    ("retry, id with NUL", lambda w: durable.retry(NUL), durable.ExecutionNotFound, "NUL"),
    (
        "get_step_logs, id with NUL",
        lambda w: durable.get_step_logs(NUL),
        durable.ExecutionNotFound,
        "NUL",
    ),
    # Event names.
    ("event name with NUL", lambda w: durable.send_event(w, NUL), ValueError, "event name"),
    (
        "event name with a surrogate",
        lambda w: durable.send_event(w, SURROGATE),
        ValueError,
        "event name must not contain an unpaired surrogate",
    ),
    ("blank event name", lambda w: durable.send_event(w, "   "), ValueError, "event name"),
    ("long event name", lambda w: durable.send_event(w, "e" * 201), ValueError, "event name"),
    ("event name not a str", lambda w: durable.send_event(w, 5), ValueError, "event name"),  # type: ignore[arg-type]
    # Input names.
    (
        "input name with NUL",
        lambda w: durable.provide_input(w, NUL, {"amount": 1}),
        ValueError,
        "input name must not contain the NUL",
    ),
    (
        "input name with a surrogate",
        lambda w: durable.provide_input(w, SURROGATE, {"amount": 1}),
        ValueError,
        "input name",
    ),
    (
        "blank input name",
        lambda w: durable.provide_input(w, " ", {"amount": 1}),
        ValueError,
        "input name",
    ),
    # Cancel reasons.
    ("reason with NUL", lambda w: durable.cancel(w, NUL), ValueError, "reason must not contain"),
    (
        "reason with a surrogate",
        lambda w: durable.cancel(w, SURROGATE),
        ValueError,
        "reason must not contain an unpaired surrogate",
    ),
    ("blank reason", lambda w: durable.cancel(w, " \t"), ValueError, "reason"),
    ("long reason", lambda w: durable.cancel(w, "r" * 2001), ValueError, "reason"),
    ("reason not a str", lambda w: durable.cancel(w, None), TypeError, "reason"),  # type: ignore[arg-type]
    # Priorities: the columns are 32-bit.
    ("priority 2**70", lambda w: durable.start(WebSteps, priority=2**70), ValueError, "priority"),
    (
        "priority -2**31-1",
        lambda w: durable.start(WebSteps, priority=-(2**31) - 1),
        ValueError,
        "priority",
    ),
    ("priority 10**5000", lambda w: durable.start(WebSteps, priority=HUGE), ValueError, "priority"),
    ("priority a str", lambda w: durable.start(WebSteps, priority="1"), TypeError, "priority"),  # type: ignore[arg-type]
    (
        "start_many priority",
        lambda w: durable.start_many(WebSteps, [{}], priority=2**31),
        ValueError,
        "priority",
    ),
    # Nesting depth.
    ("deep input", lambda w: durable.start(WebSteps, {"a": DEEP}), ValueError, "nest at most"),
    ("deep payload", lambda w: durable.send_event(w, "go", DEEP), ValueError, "payload"),
    (
        "deep response",
        lambda w: durable.provide_input(w, "review", {"amount": 1, "note": DEEP}),
        ValueError,
        "response",
    ),
    ("deep resume data", lambda w: durable.resume(w, {"a": DEEP}), ValueError, "data"),
    # Integer size.
    ("huge int in input", lambda w: durable.start(WebSteps, {"n": HUGE}), ValueError, "digits"),
    ("huge int in payload", lambda w: durable.send_event(w, "go", HUGE), ValueError, "payload"),
    (
        "huge number answer",
        lambda w: durable.provide_input(w, "review", {"amount": HUGE}),
        ValueError,
        "response",
    ),
    # Idempotency keys, limits and positions.
    (
        "idempotency key with NUL",
        lambda w: durable.start(WebSteps, idempotency_key=NUL),
        ValueError,
        "idempotency_key must not contain",
    ),
    (
        "idempotency key with a surrogate",
        lambda w: durable.start(WebSteps, idempotency_key=SURROGATE),
        ValueError,
        "idempotency_key",
    ),
    ("limit 2**70", lambda w: list(durable.list_executions(limit=2**70)), ValueError, "limit"),
    ("offset -1", lambda w: list(durable.list_executions(offset=-1)), ValueError, "offset"),
    (
        "current_step with NUL",
        lambda w: list(durable.find_executions(current_step=NUL)),
        ValueError,
        "current_step",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [pytest.param(call, error, words, id=what) for what, call, error, words in BAD_CALLS],
)
def test_a_bad_argument_gets_the_documented_error_and_changes_nothing(
    waiting: str, call: Call, error: type[Exception], words: str
) -> None:
    before = _tables()
    with pytest.raises(error) as raised:
        call(waiting)
    assert words in str(raised.value)
    assert _tables() == before


def test_a_blank_answer_to_a_required_text_field_is_refused(waiting: str) -> None:
    before = _tables()
    with pytest.raises(ValidationError) as raised:
        durable.provide_input(waiting, "review", {"amount": "   "})
    assert raised.value.message_dict == {"amount": ["this field is required"]}
    assert _tables() == before


def test_required_text_is_stripped(waiting: str) -> None:
    durable.cancel(waiting, "  changed my mind \n")
    assert durable.get_execution(waiting).error["reason"] == "changed my mind"


def test_arguments_at_the_limits_are_accepted() -> None:
    wid = durable.start(
        WebSteps, {"deep": _deep(90), "big": 10**4000}, priority=2**31 - 1, idempotency_key="k"
    )
    assert durable.get_execution(wid).priority == 2**31 - 1
    assert durable.get_execution(wid).input["big"] == 10**4000
    assert list(durable.list_executions(limit=2**62, offset=0)) == [durable.get_execution(wid)]
