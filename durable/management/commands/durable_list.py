"""`python manage.py durable_list [--workflow W] [--status S] [--current-step S]
[--since ISO] [--until ISO] [--limit N] [--json]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli

HEADERS = ("WORKFLOW ID", "WORKFLOW", "STATUS", "CURRENT STEP", "CREATED", "DURATION")


class Command(BaseCommand):
    help = "List workflow executions, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", help="Only executions of this workflow (its name).")
        parser.add_argument("--status", help="Only executions in this status (e.g. running).")
        parser.add_argument("--current-step", help="Only executions at this step.")
        parser.add_argument("--since", help="Only executions created at or after (ISO 8601).")
        parser.add_argument("--until", help="Only executions created before (ISO 8601).")
        parser.add_argument(
            "--limit", type=int, default=50, help="At most this many (default: 50)."
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = cli.positive_int(options["limit"], "--limit")
        since, until = (
            cli.parse_datetime(options[name], f"--{name}") if options[name] else None
            for name in ("since", "until")
        )
        with cli.api_errors():
            executions = list(
                api.find_executions(
                    options["workflow"],
                    current_step=options["current_step"],
                    status=options["status"],
                    time_range=(since, until) if since or until else None,
                )[:limit]
            )
        if options["json"]:
            for execution in executions:
                self.stdout.write(cli.to_json(cli.execution_record(execution)))
            return
        if not executions:
            self.stdout.write("No executions match.")
            return
        rows = [
            (
                e.workflow_id,
                e.workflow_name,
                e.status,
                e.current_step or "-",
                cli.when(e.created_at),
                cli.duration(e.duration_ms),
            )
            for e in executions
        ]
        self.stdout.write(cli.table(HEADERS, rows))
