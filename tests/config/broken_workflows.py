"""A workflow module whose definition is invalid (used by test_discovery)."""

from __future__ import annotations

from durable import Workflow, step


class Broken(Workflow):
    name = "discovery_broken"

    @step(compensate="no_such_method")
    def only(self, ctx):
        pass
