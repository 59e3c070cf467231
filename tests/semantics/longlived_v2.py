"""`semantics_shipping` after the deploy: the new way is guarded by two patches, one before
the step's wait (a run parked at the wait under the old code passed it without the patch)
and one after it (no run reached it before)."""

from __future__ import annotations

from typing import Any

from durable import Workflow, step
from tests.semantics.workflows import journal


class Shipping(Workflow):
    name = "semantics_shipping"

    @step
    def ship(self, ctx: Any) -> str:
        journal(ctx, "packed-new" if ctx.patched("label-printer") else "packed")
        ctx.wait_for_event("picked_up")
        new_way = ctx.patched("express")
        journal(ctx, "shipped-new" if new_way else "shipped-old")
        return "new" if new_way else "old"

    @step
    def notify(self, ctx: Any) -> str:
        # Asked again in another step: the run's recorded answers hold.
        return f"label-printer={ctx.patched('label-printer')} express={ctx.patched('express')}"
