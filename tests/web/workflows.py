"""Workflows the web tests start (in-process and on real workers)."""

from __future__ import annotations

import logging
import time
from typing import Any

from durable import (
    NonRetryable,
    Retry,
    Workflow,
    case_match,
    decision,
    default,
    foreach,
    loop,
    on_decision,
    parallel,
    step,
    switch,
    when_result,
)

logger = logging.getLogger("tests.web")

REVIEW_FIELDS = [
    {"name": "approved", "type": "boolean"},
    {"name": "amount", "type": "number", "required": True},
    {"name": "note", "type": "text", "max_length": 20},
    {"name": "size", "type": "select", "options": ["s", "m", "l"]},
]


class WebSteps(Workflow):
    """Three steps; the middle one reports progress and can be slowed down by the input."""

    name = "web_steps"

    @step
    def fetch(self, ctx: Any) -> None:
        print("fetching", ctx.input.get("label", ""))
        logger.warning("fetched %s", ctx.input.get("label", ""))
        ctx.put("label", ctx.input.get("label", ""))

    @step
    def crunch(self, ctx: Any) -> None:
        total = 4
        for done in range(1, total + 1):
            time.sleep(float(ctx.input.get("delay", 0)))
            ctx.progress(done, total)

    @step
    def finish(self, ctx: Any) -> str:
        return "ok"


class WebReview(Workflow):
    """Waits for a form input, then records the answer in a second step."""

    name = "web_review"

    @step
    def ask(self, ctx: Any) -> None:
        answer = ctx.wait_for_input(
            "review", type="form", prompt="Approve the order?", fields=REVIEW_FIELDS
        )
        ctx.put("review", answer)

    @step
    def after(self, ctx: Any) -> None:
        ctx.put("after", True)


ITEMS = 30


class WebForeach(Workflow):
    """30 items, each parked on an event of its own (`go-<sku>`): sending one moves one
    item's step on, and nothing else."""

    name = "web_foreach"

    @step
    def prepare(self, ctx: Any) -> None:
        ctx.put(
            "items",
            [
                {"sku": f"SKU-{i:03d}", "qty": i % 3 + 1, "title": f"Item number {i} of the order"}
                for i in range(ITEMS)
            ],
        )

    with foreach("handle_items", items=lambda ctx: ctx["items"]):

        @step
        def handle_item(self, ctx: Any, item: dict[str, Any]) -> dict[str, Any]:
            ctx.wait_for_event(f"go-{item['sku']}")
            ctx.append("handled", item["sku"])
            return {"handled": item["sku"], "qty": item["qty"]}

    @step
    def report(self, ctx: Any) -> dict[str, int]:
        return {"count": len(ctx.get("handled", []))}


class WebOrder(Workflow):
    """process_order's shape (19 nodes), held at its first step and again at its last
    by events (`go`, `ship`), so a page can watch the running node move down the graph."""

    name = "web_order"

    @step
    def validate_inventory(self, ctx: Any) -> None:
        ctx.wait_for_event("go")

    @step
    def charge_payment(self, ctx: Any) -> None:
        ctx.put("total", 10)

    @decision
    def check_order_value(self, ctx: Any) -> str:
        return "high_value" if ctx["total"] > 1_000 else "standard"

    with on_decision(check_order_value):
        with when_result("high_value"):

            @step
            def flag_for_review(self, ctx: Any) -> None:
                ctx.put("review", "flagged")

        with when_result("standard"):

            @step
            def auto_approve(self, ctx: Any) -> None:
                ctx.put("review", "auto")

    with parallel("provision"):

        @step
        def send_confirmation_email(self, ctx: Any) -> None:
            ctx.append("notifications", "email")

        @step
        def notify_warehouse(self, ctx: Any) -> None:
            ctx.append("notifications", "warehouse")

    with foreach("pack_items", items=lambda ctx: [1, 2, 3]):

        @step
        def pack_item(self, ctx: Any, item: int) -> None:
            ctx.append("packed", item)

    with loop("book_courier", while_=lambda ctx: not ctx.get("courier"), max_iterations=3):

        @step
        def request_courier(self, ctx: Any) -> None:
            ctx.put("courier", "speedy")

    with switch("choose_shipping", on=lambda ctx: ctx.input.get("country", "US")):
        with case_match("US"):

            @step
            def ship_domestic(self, ctx: Any) -> str:
                ctx.wait_for_event("ship")
                return "ground"

        with default():

            @step
            def ship_international(self, ctx: Any) -> str:
                return "air"


class WebDeclined(Workflow):
    """Charges a card that is always declined: two attempts, then the run fails."""

    name = "web_declined"

    @step
    def load(self, ctx: Any) -> dict[str, Any]:
        ctx.put("card", {"last4": "4242", "holder": ctx.input.get("holder", "Ann")})
        return {"loaded": True}

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0))
    def charge(self, ctx: Any) -> None:
        logger.warning("charging card %s", ctx["card"]["last4"])
        raise RuntimeError("card 4242 declined")


class WebSaga(Workflow):
    """Books a flight and a hotel, then cannot book a car: both are undone."""

    name = "web_saga"

    @step(compensate="cancel_flight")
    def book_flight(self, ctx: Any) -> dict[str, str]:
        ctx.put("flight", "LH123")
        return {"flight": "LH123"}

    @step(compensate="cancel_hotel")
    def book_hotel(self, ctx: Any) -> dict[str, str]:
        ctx.put("hotel", "Adlon")
        return {"hotel": "Adlon"}

    @step
    def book_car(self, ctx: Any) -> None:
        raise NonRetryable(RuntimeError("no cars left"))

    def cancel_flight(self, ctx: Any) -> None:
        logger.warning("cancelling flight %s", ctx["flight"])

    def cancel_hotel(self, ctx: Any) -> None:
        logger.warning("cancelling hotel %s", ctx["hotel"])


HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


class WebHostilePieces(Workflow):
    """Hostile strings wherever a definition and a run can put them: a block's name, items,
    output, logs, an error."""

    name = "web_hostile_pieces"

    with foreach(HOSTILE, items=lambda ctx: [HOSTILE, {"<b>": HOSTILE}]):

        @step
        def each(self, ctx: Any, item: Any) -> Any:
            logger.warning("item %s", HOSTILE)
            return {HOSTILE: item}

    @step
    def fail(self, ctx: Any) -> None:
        raise NonRetryable(RuntimeError(HOSTILE))


# The fixes' tests (test_fixes.py, test_browser_fixes.py) need these in the web server too.
import tests.web.fault_workflows  # noqa: E402, F401
