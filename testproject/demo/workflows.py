"""Example workflows for the demo: between them they use every construct of the DSL, child
workflows, a concurrency key, human input (a form, then a choice), a plain failure and a
long step with progress."""

from __future__ import annotations

import asyncio
import logging
import random
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
from durable.time import hours, minutes

logger = logging.getLogger(__name__)

# Demo steps pause briefly so a person watching the admin can see them run.
PAUSE = 0.2


def pause() -> None:
    time.sleep(PAUSE * random.uniform(0.5, 1.5))


class ProcessOrder(Workflow):
    """An order: reserve, charge (retried, refunded on failure), route, fan out, ship."""

    name = "process_order"
    timeout = hours(2)
    max_retries = 3

    @step
    def validate_inventory(self, ctx: Any) -> None:
        pause()
        items = ctx.input.get("items", [])
        if not items:
            raise NonRetryable(ValueError("an order needs at least one item"))
        ctx.put("reserved_items", [item["sku"] for item in items])

    @step(
        retry=Retry(max_attempts=3, backoff="exponential", base=1, max_backoff=5),
        timeout=minutes(2),
        compensate="refund_charge",
        queue="payments",
    )
    def charge_payment(self, ctx: Any) -> dict[str, Any]:
        pause()
        if ctx.attempt == 1 and ctx.input.get("flaky_payment"):
            raise ConnectionError("payment gateway timed out")
        total = sum(item["price"] * item.get("qty", 1) for item in ctx.input["items"])
        ctx.put({"charge_id": f"ch_{ctx.workflow_id[:8]}", "total": total})
        return {"charged": total}

    def refund_charge(self, ctx: Any) -> None:
        logger.info("refunding %s", ctx["charge_id"])

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
            pause()
            ctx.append("notifications", "email")

        @step
        async def notify_warehouse(self, ctx: Any) -> None:
            await asyncio.sleep(PAUSE)
            ctx.append("notifications", "warehouse")

    with foreach("pack_items", items=lambda ctx: ctx.input["items"], concurrency=2):

        @step
        def pack_item(self, ctx: Any, item: dict[str, Any]) -> None:
            pause()
            ctx.append("packed", item["sku"])
            ctx.increment("parcels", item.get("qty", 1))

    with loop("book_courier", while_=lambda ctx: not ctx.get("courier"), max_iterations=5):

        @step
        def request_courier(self, ctx: Any) -> None:
            pause()
            ctx.increment("courier_requests")
            if ctx["courier_requests"] >= 2:
                ctx.put("courier", "speedy")

    with switch("choose_shipping", on=lambda ctx: ctx.input.get("country", "US")):
        with case_match("US"):

            @step
            def ship_domestic(self, ctx: Any) -> str:
                return "ground"

        with default():

            @step
            def ship_international(self, ctx: Any) -> str:
                return "air"


class BookTrip(Workflow):
    """A saga: when the car cannot be booked, the hotel and flight are cancelled."""

    name = "book_trip"

    @step(compensate="cancel_flight")
    def book_flight(self, ctx: Any) -> None:
        pause()
        ctx.put("flight", "LH123")

    @step(compensate="cancel_hotel")
    def book_hotel(self, ctx: Any) -> None:
        pause()
        ctx.put("hotel", "Hotel Adlon")

    @step(retry=Retry(max_attempts=2, backoff="constant", base=0.5))
    def book_car(self, ctx: Any) -> None:
        pause()
        if ctx.input.get("car_available", True) is False:
            raise RuntimeError("no cars left")
        ctx.put("car", "VW Golf")

    def cancel_hotel(self, ctx: Any) -> None:
        logger.info("cancelled hotel %s", ctx["hotel"])

    def cancel_flight(self, ctx: Any) -> None:
        logger.info("cancelled flight %s", ctx["flight"])


class SendNewsletter(Workflow):
    """A plain fan-out: one step per recipient, then a summary."""

    name = "send_newsletter"

    @step
    def load_recipients(self, ctx: Any) -> None:
        ctx.put("recipients", [f"user{i}@example.com" for i in range(ctx.input.get("n", 5))])

    with foreach("deliver", items=lambda ctx: ctx["recipients"]):

        @step
        def send_one(self, ctx: Any, item: str) -> None:
            pause()
            ctx.increment("sent")

    @step
    def summarise(self, ctx: Any) -> dict[str, Any]:
        return {"sent": ctx["sent"]}


class ImportSupplier(Workflow):
    """One supplier's catalogue import; at most one runs per supplier at a time."""

    name = "import_supplier"
    concurrency_key = "supplier"
    concurrency_limit = 1

    @step
    def fetch_rows(self, ctx: Any) -> int:
        rows = random.randint(20, 200)
        for done in range(0, rows + 1, 40):
            ctx.progress(min(done, rows), rows)
            pause()
        logger.info("fetched %d rows from %s", rows, ctx.input["supplier"])
        return rows


class ImportCatalog(Workflow):
    """A parent workflow: a child import per supplier, then a total of their results."""

    name = "import_catalog"

    @step
    def start_imports(self, ctx: Any) -> None:
        ctx.put(
            "imports",
            [ctx.start_child(ImportSupplier, {"supplier": s}) for s in ctx.input["suppliers"]],
        )

    @step
    def total(self, ctx: Any) -> None:
        ctx.set_result({"rows": sum(ctx.wait_for_child(wid) for wid in ctx["imports"])})


class ExpenseApproval(Workflow):
    """A person files an expense in a form, a manager approves or rejects it."""

    name = "expense_approval"

    @step
    def file_expense(self, ctx: Any) -> None:
        expense = ctx.wait_for_input(
            "expense",
            type="form",
            prompt=f"File the expense of {ctx.input.get('employee', 'an employee')}.",
            fields=[
                {"name": "description", "type": "text", "required": True, "max_length": 200},
                {
                    "name": "amount",
                    "type": "number",
                    "required": True,
                    "help_text": "In euros, receipts included.",
                },
                {
                    "name": "category",
                    "type": "select",
                    "options": ["travel", "meals", "equipment", "other"],
                    "required": True,
                },
                {"name": "spent_on", "type": "date", "label": "Date of the expense"},
                {"name": "notes", "type": "textarea"},
            ],
            timeout=hours(72),
        )
        ctx.put("expense", expense)

    @step
    def manager_decision(self, ctx: Any) -> None:
        expense = ctx["expense"]
        decision = ctx.wait_for_input(
            "decision",
            type="single_choice",
            prompt=f"Approve {expense['amount']} EUR for {expense['description']!r}?",
            choices=[
                {"value": "approve", "label": "Approve"},
                {"value": "reject", "label": "Reject"},
            ],
            timeout=hours(48),
            timeout_value="reject",
        )
        ctx.put("decision", decision)

    @step
    def record(self, ctx: Any) -> dict[str, Any]:
        logger.info("expense %s: %s", ctx["expense"]["description"], ctx["decision"])
        return {"decision": ctx["decision"], "amount": ctx["expense"]["amount"]}


class NightlyReport(Workflow):
    """A plain failure: the export it reads has a bad row; two attempts, then it fails."""

    name = "nightly_report"

    @step
    def fetch_export(self, ctx: Any) -> None:
        pause()
        ctx.put("rows", [{"sku": "book", "price": "20"}, {"sku": "lamp", "price": "n/a"}])

    @step(retry=Retry(max_attempts=2, backoff="constant", base=1))
    def parse_prices(self, ctx: Any) -> None:
        for number, row in enumerate(ctx["rows"], start=1):
            try:
                float(row["price"])
            except ValueError:
                raise ValueError(f"row {number}: price {row['price']!r} is not a number") from None

    @step
    def publish(self, ctx: Any) -> None:
        ctx.put("published", True)


class RebuildSearchIndex(Workflow):
    """A long step that reports its progress, then a short one."""

    name = "rebuild_search_index"

    @step
    def reindex(self, ctx: Any) -> int:
        documents = int(ctx.input.get("documents", 600))
        seconds = float(ctx.input.get("seconds", 45))
        batch = max(documents // 30, 1)
        for done in range(0, documents + 1, batch):
            ctx.progress(min(done, documents), documents)
            time.sleep(seconds / 30)
        logger.info("reindexed %d documents", documents)
        return documents

    @step
    def swap_alias(self, ctx: Any) -> None:
        ctx.put("alias", "search-live")
