"""Typed payloads: dataclass and pydantic inputs (`input_type`), outputs, events and
responses, and values JSON would not give back as they are."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

import durable
from durable import DefinitionError, Workflow, step
from durable.dsl.payloads import PayloadError, load
from durable.models import PendingInput, WorkflowExecution
from durable.serialization import NotJSONError, normalize
from durable.testing import run_until_idle
from tests.semantics.typed import (
    Item,
    NotAModel,
    OrderInput,
    Payment,
    Review,
    Stamped,
    TypedOrder,
)

pytestmark = pytest.mark.django_db


def test_dataclass_input_output_event_and_response_round_trip() -> None:
    order = OrderInput(order_id=7, items=[Item("a", 2), Item("b")], tags={"channel": "web"})
    wid = durable.start(TypedOrder, order)
    run_until_idle()
    durable.send_event(wid, "paid", Payment(amount_cents=1250, reference="pay_1"))
    run_until_idle()
    durable.provide_input(wid, "review", Review(approved=True, comment="fine"))
    run_until_idle()

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.input == {
        "order_id": 7,
        "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
        "note": None,
        "tags": {"channel": "web"},
    }
    assert execution.steps.get(step="count").output == {"order_id": 7, "count": 3}
    assert execution.context["picked"] == ["a", "b"]
    assert execution.context["paid"] == {"amount_cents": 1250, "reference": "pay_1"}
    assert execution.context["review"] == {"approved": True, "comment": "fine"}
    assert PendingInput.objects.get(execution=execution).response == execution.context["review"]


def test_a_dict_that_fits_the_input_type_is_accepted() -> None:
    wid = durable.start(TypedOrder, {"order_id": 1, "items": [{"sku": "x"}]})
    run_until_idle()

    assert WorkflowExecution.objects.get(workflow_id=wid).steps.get(step="count").output == {
        "order_id": 1,
        "count": 1,
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"items": []}, "input['order_id']: is required by OrderInput"),
        ({"order_id": "7", "items": []}, "input['order_id']: must be int, got str '7'"),
        (
            {"order_id": 7, "items": [{"sku": "a", "qty": 1.5}]},
            "input['items'][0]['qty']: must be int, got float 1.5",
        ),
        ({"order_id": 7, "items": [], "colour": "red"}, "OrderInput has no field 'colour'"),
        ({"order_id": 7, "items": {}}, "input['items']: must be a list, got dict {}"),
    ],
)
def test_input_that_does_not_fit_is_refused_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        durable.start(TypedOrder, value)

    assert message in str(info.value)
    assert "takes OrderInput" in str(info.value)
    assert not WorkflowExecution.objects.exists()


def test_a_stored_input_that_no_longer_fits_fails_the_run_without_retries() -> None:
    wid = durable.start(TypedOrder, {"order_id": 1, "items": []})
    WorkflowExecution.objects.filter(workflow_id=wid).update(input={"order": 1})
    run_until_idle()

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "failed"
    assert execution.steps.count() == 1
    assert "the run's input does not fit input_type OrderInput" in execution.error["message"]
    assert "input: OrderInput has no field 'order'" in execution.error["message"]


def test_a_dataclass_holding_a_datetime_is_refused_with_its_path() -> None:
    with pytest.raises(NotJSONError) as info:
        normalize(OrderInput(order_id=1, items=[], tags={"at": datetime.now(UTC)}), "input")  # type: ignore[dict-item]

    assert info.value.path == "input['tags']['at']"


def test_a_step_returning_a_datetime_fails_naming_the_return_value() -> None:
    wid = durable.start(Stamped)
    run_until_idle()

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "failed"
    assert execution.error["type"] == "durable.serialization.NotJSONError"
    assert execution.error["message"].startswith(
        "return value of step 'stamp'['at']: a datetime would come back from JSON as a str"
    )


def test_an_input_type_that_is_no_model_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="input_type must be a dataclass or a pydantic"):

        class Broken(Workflow):
            name = "semantics_broken_input_type"
            input_type = NotAModel

            @step
            def only(self, ctx: Any) -> None: ...


def test_load_checks_optionals_unions_and_literals() -> None:
    from typing import Literal

    assert load(int | None, None) is None
    assert load(int | str, "x") == "x"
    assert load(Literal["a", "b"], "a") == "a"
    with pytest.raises(PayloadError, match="must be one of"):
        load(Literal["a", "b"], "c")
    with pytest.raises(PayloadError, match="fits none of"):
        load(int | None, "x")


def test_pydantic_input_keeps_datetimes_and_decimals_exact() -> None:
    pytest.importorskip("pydantic")
    from tests.semantics.typed_pydantic import Booking, TypedBooking

    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    wid = durable.start(TypedBooking, Booking(guest="Ada", at=at, amount=Decimal("10.10")))
    run_until_idle()

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.input == {"guest": "Ada", "at": "2026-05-01T09:30:00Z", "amount": "10.10"}
    output = execution.steps.get().output
    assert Booking.model_validate(output) == Booking(guest="Ada", at=at, amount=Decimal("20.20"))


def test_pydantic_input_that_does_not_validate_is_refused_naming_the_field() -> None:
    pytest.importorskip("pydantic")
    from tests.semantics.typed_pydantic import TypedBooking

    with pytest.raises(ValidationError, match=r"input\['at'\]: Input should be a valid datetime"):
        durable.start(TypedBooking, {"guest": "Ada", "at": "soon", "amount": "1"})
    assert not WorkflowExecution.objects.exists()
