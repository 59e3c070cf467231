"""`python manage.py durable_cleanup [--dry-run] [--completed-days N] [--failed-days N]
[--batch-size N]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable.management import cli
from durable.store import retention


class Command(BaseCommand):
    help = (
        "Delete finished executions older than the retention windows "
        "(default: DURABLE['RETENTION']), in small batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--completed-days",
            type=float,
            default=None,
            help="Keep completed executions this many days (default: COMPLETED_DAYS).",
        )
        parser.add_argument(
            "--failed-days",
            type=float,
            default=None,
            help="Keep failed, compensated and cancelled executions this many days "
            "(default: FAILED_DAYS).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows deleted per transaction."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        completed_days, failed_days = retention.retention_days()
        if options["completed_days"] is not None:
            completed_days = options["completed_days"]
        if options["failed_days"] is not None:
            failed_days = options["failed_days"]
        batch_size = cli.positive_int(options["batch_size"], "--batch-size")
        with cli.api_errors():
            counts = retention.cleanup(
                completed_days, failed_days, batch_size, dry_run=options["dry_run"]
            )
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb} (completed: {_window(completed_days)}; failed: {_window(failed_days)}):"
        )
        width = max(len(name) for name in counts)
        for name, count in counts.items():
            self.stdout.write(f"  {name.replace('_', ' ').ljust(width)}  {count}")


def _window(days: float | None) -> str:
    return "kept forever" if days is None else f"finished over {days:g} days ago"
