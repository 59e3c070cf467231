"""`python manage.py durable_retry <workflow_id> [--from-step NAME]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = (
        "Re-run a finished execution from a step (default: the step that failed; for a "
        "compensated run, its first compensated step) with the context saved before it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument(
            "--from-step",
            default=None,
            help="A root-level step or block; a step inside a block restarts its block.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with cli.api_errors():
            api.retry(options["workflow_id"], from_step=options["from_step"])
        self.stdout.write(f"retrying {options['workflow_id']}")
