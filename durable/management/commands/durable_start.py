"""`python manage.py durable_start <workflow> [--input JSON] [--queue Q] [--priority N]
[--scheduled-at ISO] [--idempotency-key K]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = "Start a workflow and print its workflow id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="The workflow's name.")
        parser.add_argument("--input", default="{}", help="The input, a JSON object.")
        parser.add_argument("--queue", help="Run on this queue instead of the workflow's.")
        parser.add_argument("--priority", type=int, default=0, help="Higher runs first.")
        parser.add_argument("--scheduled-at", help="Do not start before (ISO 8601).")
        parser.add_argument(
            "--idempotency-key", help="Starting twice with one key starts one execution."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = cli.parse_json(options["input"], "--input")
        scheduled_at = (
            cli.parse_datetime(options["scheduled_at"], "--scheduled-at")
            if options["scheduled_at"]
            else None
        )
        with cli.api_errors():
            workflow_id = api.start(
                options["workflow"],
                data,
                queue=options["queue"],
                priority=options["priority"],
                scheduled_at=scheduled_at,
                idempotency_key=options["idempotency_key"],
            )
        self.stdout.write(workflow_id)
