"""Workflows of the round-2 API tests (results, replay, retry and fork of sagas, triggers).

The saga writes its side effects to a ledger file named in its input, so a test can read
what a real worker process did: one line per booking, cancellation and charge.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from durable import Retry, Workflow, step


class Adds(Workflow):
    name = "semantics_adds"

    @step
    def add(self, ctx: Any) -> int:
        return int(ctx.input["a"]) + int(ctx.input["b"])


class Breaks(Workflow):
    name = "semantics_breaks"

    @step(retry=Retry(max_attempts=1))
    def only(self, ctx: Any) -> None:
        raise ValueError("nope")


class WaitsForGo(Workflow):
    name = "semantics_waits_for_go"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.put("prepared", True)

    @step
    def wait_for_go(self, ctx: Any) -> Any:
        return ctx.wait_for_event("go")


class AsksForApproval(Workflow):
    name = "semantics_asks_for_approval"

    @step
    def ask(self, ctx: Any) -> Any:
        return ctx.wait_for_input("approval")


def record(ctx: Any, line: str) -> None:
    with Path(ctx.input["ledger"]).open("a") as ledger:
        ledger.write(line + "\n")


def ledger_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class TripSaga(Workflow):
    """Book a flight, book a hotel, charge the card. The charge fails while the file named
    by `decline` exists; the bookings are then cancelled by their compensations."""

    name = "semantics_trip_saga"
    max_retries = 1

    @step(compensate="cancel_flight")
    def book_flight(self, ctx: Any) -> None:
        booking = f"flight-{ctx.attempt}-{len(ledger_lines(Path(ctx.input['ledger'])))}"
        record(ctx, f"book {booking}")
        ctx.put("flight", booking)

    def cancel_flight(self, ctx: Any) -> None:
        record(ctx, f"cancel {ctx['flight']}")

    @step(compensate="cancel_hotel")
    def book_hotel(self, ctx: Any) -> None:
        booking = f"hotel-{ctx.attempt}-{len(ledger_lines(Path(ctx.input['ledger'])))}"
        record(ctx, f"book {booking}")
        ctx.put("hotel", booking)

    def cancel_hotel(self, ctx: Any) -> None:
        # A hotel that cannot be cancelled while the file named by `stuck` exists.
        if ctx.input.get("stuck") and Path(ctx.input["stuck"]).exists():
            raise RuntimeError("hotel cancellation refused")
        record(ctx, f"cancel {ctx['hotel']}")

    @step(retry=Retry(max_attempts=1))
    def charge(self, ctx: Any) -> dict[str, str]:
        if Path(ctx.input["decline"]).exists():
            raise RuntimeError("card declined")
        record(ctx, f"charge {ctx['flight']} {ctx['hotel']}")
        return {"flight": ctx["flight"], "hotel": ctx["hotel"]}


def active_bookings(lines: list[str]) -> set[str]:
    """Bookings made and not cancelled, by the ledger."""
    booked = {line.split()[1] for line in lines if line.startswith("book ")}
    cancelled = {line.split()[1] for line in lines if line.startswith("cancel ")}
    return booked - cancelled


class ReserveStock(Workflow):
    name = "semantics_reserve_stock"
    triggers = ["semantics.order.created"]

    @step
    def reserve(self, ctx: Any) -> str:
        return f"reserved for {ctx.input['order_id']}"


class SendReceipt(Workflow):
    name = "semantics_send_receipt"
    triggers = ("semantics.order.created", "semantics.order.paid")

    @step
    def send(self, ctx: Any) -> str:
        return f"receipt for {ctx.input['order_id']}"


class PerCustomer(Workflow):
    """Needs `customer_id` in its input (its concurrency key)."""

    name = "semantics_per_customer"
    triggers = ["semantics.customer.event"]
    concurrency_key = "customer_id"
    concurrency_limit = 1

    @step
    def handle(self, ctx: Any) -> None:
        pass


class AlsoPerCustomerEvent(Workflow):
    name = "semantics_also_customer_event"
    triggers = ["semantics.customer.event"]

    @step
    def handle(self, ctx: Any) -> None:
        pass


class ReportsProgress(Workflow):
    """Reports 3 of 10, then holds until the file named by `release` exists."""

    name = "semantics_reports_progress"

    @step
    def crunch(self, ctx: Any) -> str:
        ctx.progress(3, 10)
        release = Path(ctx.input["release"])
        for _ in range(1200):
            if release.exists():
                ctx.progress(10, 10)
                return "crunched"
            time.sleep(0.05)
        raise TimeoutError("never released")


class SleepsTwoHours(Workflow):
    name = "semantics_sleeps_two_hours"

    @step
    def nap(self, ctx: Any) -> str:
        ctx.sleep_for(hours=2)
        return "rested"


class TripWithoutFlights(Workflow):
    """TripSaga after a deploy that removed the flight booking."""

    name = "semantics_trip_without_flights"

    @step(compensate="cancel_hotel")
    def book_hotel(self, ctx: Any) -> None:
        record(ctx, "book hotel")

    def cancel_hotel(self, ctx: Any) -> None:
        record(ctx, "cancel hotel")

    @step
    def charge(self, ctx: Any) -> None:
        record(ctx, "charge")


class Countdown(Workflow):
    """Continues as new with n - 1 until n is 0, then returns "liftoff"."""

    name = "semantics_countdown"

    @step
    def tick(self, ctx: Any) -> str:
        if ctx.input["n"] > 0:
            ctx.continue_as_new({"n": ctx.input["n"] - 1})
        return "liftoff"
