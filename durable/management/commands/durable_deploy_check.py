"""`python manage.py durable_deploy_check [--workflow NAME ...]`: run with the code about
to be deployed, before deploying it. Lists every in-flight execution whose position (its
current step, the blocks around it, its open fan-outs, its queued compensations) that code
no longer has, and exits with status 1 when there is any."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable.conf import durable_settings
from durable.store import deploys


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
        found = deploys.stranded(
            using=str(durable_settings.DATABASE), workflows=options["workflow"]
        )
        if not found:
            self.stdout.write("no in-flight execution would be stranded")
            return
        for execution, problems in found:
            for problem in problems:
                self.stdout.write(
                    f"{execution.workflow_name}\t{execution.workflow_id}\t{execution.status}\t"
                    f"position={problem.position}\tmissing={problem.missing}\t{problem.message}"
                )
        raise CommandError(
            f"{len(found)} in-flight execution(s) would be stranded by this code; restore "
            "the steps, map renames in Workflow.renamed_steps, or let them finish first"
        )
