"""`semantics_shipping` changed without a patch: `ship` as first deployed, `notify` not."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step
from tests.semantics.workflows import journal


class Shipping(Workflow):
    name = "semantics_shipping"

    @step
    def ship(self, ctx: Any) -> str:
        journal(ctx, "packed")
        ctx.wait_for_event("picked_up")
        journal(ctx, "shipped-old")
        return "old"

    @step
    def notify(self, ctx: Any) -> str:
        return "notified by text message"
