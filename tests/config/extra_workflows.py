"""A module named in DURABLE["WORKFLOW_MODULES"] by test_discovery."""

from __future__ import annotations

from durable import Workflow, step


class ExtraModuleWorkflow(Workflow):
    name = "discovery_extra_module"

    @step
    def only(self, ctx):
        pass
