"""A workflow whose `input_type` is a pydantic model (pydantic parses back its datetimes
and Decimals, which plain JSON would hand back as strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from durable import Workflow, step


class Booking(BaseModel):
    guest: str = Field(min_length=1)
    at: datetime
    amount: Decimal


class TypedBooking(Workflow):
    name = "semantics_typed_booking"
    input_type = Booking

    @step
    def book(self, ctx: Any) -> Booking:
        booking = ctx.input
        assert isinstance(booking, Booking)
        assert isinstance(booking.at, datetime)
        assert isinstance(booking.amount, Decimal)
        return booking.model_copy(update={"amount": booking.amount * 2})
