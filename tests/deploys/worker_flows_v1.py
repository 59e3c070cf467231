"""`deploy_e2e` as first deployed (the test process imports this one)."""

from __future__ import annotations

from durable import Retry, Workflow, step


class DeployE2E(Workflow):
    name = "deploy_e2e"

    @step
    def pack(self, ctx):
        ctx.append("log", "pack")

    @step
    def await_pickup(self, ctx):
        ctx.put("pickup", ctx.wait_for_event("picked_up"))

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")


class RetryE2E(Workflow):
    name = "retry_e2e"

    @step
    def prepare(self, ctx):
        ctx.put("amount", 3)

    @step(retry=Retry(max_attempts=1))
    def charge(self, ctx):
        if ctx.attempt == 1:
            raise RuntimeError("card declined")
        ctx.increment("charged", ctx["amount"])
