"""`python manage.py durable_scheduler [--interval S] [--once]`."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable.management.commands.durable_worker import Command as WorkerCommand
from durable.scheduler import run_forever, schedule_all_crons, tick


class Command(BaseCommand):
    help = (
        "Run the Durable cron scheduler: start scheduled workflows when they fall due. "
        "Workers run one too; any number may run at once, each tick fires once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Longest sleep between looks for changed schedules, in seconds "
            "(default: DURABLE['SCHEDULER']['INTERVAL'], 5). Due ticks fire on time anyway.",
        )
        parser.add_argument(
            "--once",
            action="store_true",
            help="Register class schedules, fire what is due now, print it and exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        WorkerCommand._configure_logging(options["verbosity"])
        interval = options["interval"]
        if interval is not None and not interval > 0:
            raise CommandError("--interval must be > 0")
        schedule_all_crons()
        if options["once"]:
            for run in tick():
                self.stdout.write(f"{run.schedule} {run.fire_time.isoformat()} {run.workflow_id}")
            return
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        run_forever(stop, interval)
