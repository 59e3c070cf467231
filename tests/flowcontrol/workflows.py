"""Workflows with flow control, run inline by tests and by worker processes."""

from __future__ import annotations

import time
from typing import Any

from durable import Workflow, step
from durable.time import seconds


class OnePerCustomer(Workflow):
    """Two steps, so an execution "runs" across a checkpoint and a queue round trip."""

    name = "fc_one_per_customer"
    concurrency_key = "customer"
    concurrency_limit = 1

    @step
    def begin(self, ctx: Any) -> None:
        time.sleep(float(ctx.input.get("sleep", 0)))

    @step
    def end(self, ctx: Any) -> str:
        time.sleep(float(ctx.input.get("sleep", 0)))
        return str(ctx.input["n"])


class ApprovalPerCustomer(Workflow):
    """Waits for an event: a waiting execution keeps its customer's slot."""

    name = "fc_approval_per_customer"
    concurrency_key = "customer"
    concurrency_limit = 1

    @step
    def ask(self, ctx: Any) -> None:
        ctx.put("approved", ctx.wait_for_event("approved"))


class TwoPerRegion(Workflow):
    name = "fc_two_per_region"
    concurrency_key = staticmethod(lambda input: input["region"].lower())
    concurrency_limit = 2

    @step
    def work(self, ctx: Any) -> None:
        time.sleep(float(ctx.input.get("sleep", 0)))

    @step
    def done(self, ctx: Any) -> None:
        time.sleep(float(ctx.input.get("sleep", 0)))


class TenPerSecond(Workflow):
    name = "fc_ten_per_second"
    rate_limit = "10/s"

    @step
    def call_api(self, ctx: Any) -> None:
        pass


class FivePerSecondPerAccount(Workflow):
    name = "fc_five_per_second_per_account"
    rate_limit = "5/s"
    rate_limit_key = "account"

    @step
    def call_api(self, ctx: Any) -> None:
        pass


class Reindex(Workflow):
    name = "fc_reindex"
    debounce = 60
    debounce_key = "document"

    @step
    def reindex(self, ctx: Any) -> Any:
        return ctx.input["version"]


class QuickReindex(Workflow):
    name = "fc_quick_reindex"
    # Long enough that a burst of starts on a loaded machine stays one burst.
    debounce = seconds(5)
    debounce_key = "document"

    @step
    def reindex(self, ctx: Any) -> Any:
        return ctx.input["version"]


class OnePerMinute(Workflow):
    name = "fc_one_per_minute"
    concurrency_key = "customer"
    concurrency_limit = 1
    rate_limit = "1/m"

    @step
    def call_api(self, ctx: Any) -> None:
        pass
