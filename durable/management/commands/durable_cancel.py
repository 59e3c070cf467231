"""`python manage.py durable_cancel <workflow_id> [--reason TEXT]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = "Cancel an unfinished execution (no compensation runs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument("--reason", default="cancelled", help="Stored with the execution.")

    def handle(self, *args: Any, **options: Any) -> None:
        with cli.api_errors():
            api.cancel(options["workflow_id"], reason=options["reason"])
        self.stdout.write(f"cancelled {options['workflow_id']}")
