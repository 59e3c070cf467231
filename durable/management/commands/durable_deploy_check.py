"""`python manage.py durable_deploy_check [--workflow NAME ...]`: run with the code about
to be deployed, before deploying it. Lists every in-flight execution whose position (its
current step, the blocks around it, its open fan-outs, its queued compensations) that code
no longer has, and every one with a step ahead whose code changed from what the workers
run without a new `ctx.patched()` id; exits with status 1 when there is any."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable.conf import durable_settings
from durable.store import deploys, patching


class Command(BaseCommand):
    help = (
        "List the in-flight executions the current code would strand (their step removed, "
        "renamed without renamed_steps, or moved across a block); exit 1 if any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workflow", action="append", default=None, help="Check only this workflow."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using = str(durable_settings.DATABASE)
        found = deploys.stranded(using=using, workflows=options["workflow"])
        unpatched = patching.unpatched(using=using, workflows=options["workflow"])
        if not found:
            self.stdout.write("no in-flight execution would be stranded")
        for execution, problems in found:
            for problem in problems:
                self.stdout.write(
                    f"{execution.workflow_name}\t{execution.workflow_id}\t{execution.status}\t"
                    f"position={problem.position}\tmissing={problem.missing}\t{problem.message}"
                )
        if not unpatched:
            self.stdout.write("no in-flight execution has an unpatched step change ahead")
        for execution, steps in unpatched:
            for name in steps:
                self.stdout.write(
                    f"{execution.workflow_name}\t{execution.workflow_id}\t{execution.status}\t"
                    f"step={name}\tunpatched change: the step's code changed and no new "
                    "ctx.patched() id guards it"
                )
        failures: list[str] = []
        if found:
            failures.append(
                f"{len(found)} in-flight execution(s) would be stranded by this code; restore "
                "the steps, map renames in Workflow.renamed_steps, or let them finish first"
            )
        if unpatched:
            failures.append(
                f"{len(unpatched)} in-flight execution(s) have steps ahead whose code changed "
                "without a new ctx.patched() id; guard the change with ctx.patched('id'), "
                "or let them finish first"
            )
        if failures:
            raise CommandError("; ".join(failures))
