"""`python manage.py durable_status <workflow_id> [--logs] [--json]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli
from durable.models import StepExecution, WorkflowExecution

STEP_HEADERS = ("STEP", "SCOPE", "ATTEMPT", "STATUS", "STARTED", "DURATION", "ERROR")


class Command(BaseCommand):
    help = "Show one execution and every attempt of its steps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument(
            "--logs", action="store_true", help="Print the captured log lines of every attempt."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        with cli.api_errors():
            execution = api.get_execution(options["workflow_id"], include_logs=True)
        attempts = list(execution.steps.all())
        if options["json"]:
            record = cli.execution_record(execution, data=True)
            record["steps"] = [cli.step_record(row, logs=options["logs"]) for row in attempts]
            self.stdout.write(cli.to_json(record))
            return
        self._summary(execution)
        if not attempts:
            self.stdout.write("\nNo step has run yet.")
            return
        rows = [
            (
                row.step if row.kind == "step" else f"{row.step} ({row.kind})",
                row.scope_key or "-",
                str(row.attempt),
                row.status,
                cli.when(row.started_at),
                cli.duration(row.duration_ms),
                cli.error_text(row.error),
            )
            for row in attempts
        ]
        self.stdout.write("\n" + cli.table(STEP_HEADERS, rows))
        if options["logs"]:
            for row in attempts:
                self._logs(row)

    def _summary(self, execution: WorkflowExecution) -> None:
        lines = [
            ("workflow id", execution.workflow_id),
            ("workflow", f"{execution.workflow_name} ({execution.workflow_module})"),
            ("status", execution.status),
            ("queue", f"{execution.queue} (priority {execution.priority})"),
            ("current step", execution.current_step or "-"),
            ("created", cli.when(execution.created_at)),
            ("started", cli.when(execution.started_at)),
            ("completed", cli.when(execution.completed_at)),
            ("duration", cli.duration(execution.duration_ms)),
        ]
        if execution.error:
            lines.append(("error", cli.error_text(execution.error)))
        width = max(len(label) for label, _ in lines)
        for label, value in lines:
            self.stdout.write(f"{label.ljust(width)}  {value}")

    def _logs(self, row: StepExecution) -> None:
        scope = f" {row.scope_key}" if row.scope_key else ""
        self.stdout.write(f"\n== {row.step}{scope} attempt {row.attempt} ({row.status}) ==")
        if not row.logs:
            self.stdout.write("(no output)")
        for entry in row.logs or []:
            self.stdout.write(
                f"{entry.get('timestamp', '')} {entry.get('level', '')} "
                f"[{entry.get('logger', '')}] {entry.get('message', '')}"
            )
