"""Workflows with typed payloads: dataclasses everywhere, and a pydantic model input
(tests/semantics/typed_pydantic.py, imported only where pydantic is installed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable import Workflow, foreach, step


@dataclass
class Item:
    sku: str
    qty: int = 1


@dataclass
class OrderInput:
    order_id: int
    items: list[Item]
    note: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Receipt:
    order_id: int
    count: int


@dataclass
class Payment:
    amount_cents: int
    reference: str


@dataclass
class Review:
    approved: bool
    comment: str


class TypedOrder(Workflow):
    name = "semantics_typed_order"
    input_type = OrderInput

    @step
    def count(self, ctx: Any) -> Receipt:
        order = ctx.input
        assert isinstance(order, OrderInput)
        assert all(isinstance(item, Item) for item in order.items)
        return Receipt(order_id=order.order_id, count=sum(item.qty for item in order.items))

    # Routing code sees the typed input too.
    with foreach("each_item", items=lambda ctx: [item.sku for item in ctx.input.items]):

        @step
        def pick(self, ctx: Any, sku: str) -> None:
            ctx.append("picked", sku)

    @step
    def settle(self, ctx: Any) -> None:
        ctx.put("paid", ctx.wait_for_event("paid"))
        ctx.put("review", ctx.wait_for_input("review"))


class Stamped(Workflow):
    """Returns what JSON cannot give back as it is."""

    name = "semantics_stamped"

    @step
    def stamp(self, ctx: Any) -> Any:
        return {"at": datetime(2026, 1, 1)}


class NotAModel:
    pass
