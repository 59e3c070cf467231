"""Versions of workflows as successive deploys would change them (in-process tests swap
the registered definition; see `deployed`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from durable import Retry, Workflow, parallel, step
from durable.dsl import registry
from durable.dsl.nodes import Definition


@contextmanager
def deployed(name: str, cls: type[Workflow]) -> Iterator[Definition]:
    """Run the block with `cls`'s definition registered under `name`, as if deployed."""
    old = registry.get(name)
    new = cls.definition()
    swapped = Definition.build(
        name=name,
        workflow_class=new.workflow_class,
        nodes=new.nodes,
        max_retries=new.max_retries,
        queue=new.queue,
        renamed_steps=new.renamed_steps,
    )
    registry.unregister(name)
    registry.register(swapped)
    try:
        yield swapped
    finally:
        registry.unregister(name)
        registry.register(old)


class Shipping(Workflow):
    name = "deploy_shipping"

    @step
    def pack(self, ctx):
        ctx.append("log", "pack")

    @step
    def await_pickup(self, ctx):
        ctx.put("pickup", ctx.wait_for_event("picked_up"))

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")


class ShippingWithoutPickup(Workflow):  # await_pickup removed
    name = "deploy_shipping_v2"

    @step
    def pack(self, ctx):
        ctx.append("log", "pack")

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")


class ShippingRenamed(Workflow):  # await_pickup renamed, the rename mapped
    name = "deploy_shipping_v3"
    renamed_steps = {"await_pickup": "wait_for_courier"}

    @step
    def pack(self, ctx):
        ctx.append("log", "pack")

    @step
    def wait_for_courier(self, ctx):
        ctx.put("pickup", ctx.wait_for_event("picked_up"))

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")


class ShippingExtended(Workflow):  # a safe change: a body changed, a step added at the end
    name = "deploy_shipping_v4"

    @step
    def pack(self, ctx):
        ctx.append("log", "pack v4")

    @step
    def await_pickup(self, ctx):
        ctx.put("pickup", ctx.wait_for_event("picked_up"))
        ctx.append("log", "picked up v4")

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")

    @step
    def invoice(self, ctx):
        ctx.append("log", "invoice")


class Fanned(Workflow):
    name = "deploy_fanned"

    with parallel("both"):

        @step
        def left(self, ctx):
            ctx.put("left", ctx.wait_for_event("left_go"))

        @step
        def right(self, ctx):
            ctx.put("right", True)

    @step
    def after(self, ctx):
        ctx.put("after", True)


class FannedRestructured(Workflow):  # `left` moved out of the parallel
    name = "deploy_fanned_v2"

    with parallel("both"):

        @step
        def right(self, ctx):
            ctx.put("right", True)

    @step
    def left(self, ctx):
        ctx.put("left", ctx.wait_for_event("left_go"))

    @step
    def after(self, ctx):
        ctx.put("after", True)


class Billing(Workflow):
    """Fails `charge` on the first attempt of every execution (attempt 1), never after."""

    name = "deploy_billing"

    @step
    def prepare(self, ctx):
        ctx.append("runs", "prepare")
        ctx.put("amount", ctx.input.get("amount", 10))

    @step(retry=Retry(max_attempts=1))
    def charge(self, ctx):
        if ctx.attempt == 1 and ctx.input.get("fail"):
            raise RuntimeError("card declined")
        ctx.append("runs", "charge")
        ctx.increment("charged", ctx["amount"])

    with parallel("notify"):

        @step
        def email(self, ctx):
            ctx.append("runs", "email")

        @step
        def sms(self, ctx):
            ctx.append("runs", "sms")

    @step
    def close(self, ctx):
        ctx.append("runs", "close")
        return ctx["charged"]


class FannedRenamed(Workflow):  # the parallel block renamed, the rename mapped
    name = "deploy_fanned_v3"
    renamed_steps = {"both": "pair"}

    with parallel("pair"):

        @step
        def left(self, ctx):
            ctx.put("left", ctx.wait_for_event("left_go"))

        @step
        def right(self, ctx):
            ctx.put("right", True)

    @step
    def after(self, ctx):
        ctx.put("after", True)


class FannedWider(Workflow):  # the parallel gained a branch while a run was inside it
    name = "deploy_fanned_v4"

    with parallel("both"):

        @step
        def left(self, ctx):
            ctx.put("left", ctx.wait_for_event("left_go"))

        @step
        def right(self, ctx):
            ctx.put("right", True)

        @step
        def middle(self, ctx):
            ctx.put("middle", True)

    @step
    def after(self, ctx):
        ctx.put("after", True)


class Trip(Workflow):
    name = "deploy_trip"

    @step(compensate="cancel_hotel")
    def book_hotel(self, ctx):
        ctx.put("hotel", "booked")

    @step(retry=Retry(max_attempts=1))
    def pay(self, ctx):
        raise RuntimeError("payment refused")

    def cancel_hotel(self, ctx):
        ctx.put("hotel", "cancelled")


class TripWithoutHotel(Workflow):  # book_hotel (and its compensation) removed
    name = "deploy_trip_v2"

    @step(retry=Retry(max_attempts=1))
    def pay(self, ctx):
        raise RuntimeError("payment refused")


class AlwaysFails(Workflow):
    name = "deploy_always_fails"

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def flaky(self, ctx):
        raise RuntimeError(f"attempt {ctx.attempt} failed")
