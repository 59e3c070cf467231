"""`deploy_e2e` after a deploy that removed `await_pickup`."""

from __future__ import annotations

from durable import Workflow, step


class DeployE2E(Workflow):
    name = "deploy_e2e"

    @step
    def pack(self, ctx):
        ctx.append("log", "pack")

    @step
    def deliver(self, ctx):
        ctx.append("log", "deliver")
