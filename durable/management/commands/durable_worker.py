"""`python manage.py durable_worker [--queues a,b] [--concurrency N]`."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable.conf import durable_settings
from durable.engine.telemetry import Telemetry
from durable.engine.worker import Worker
from durable.scheduler import start_scheduler_thread
from durable.telemetry import metrics

LEVELS = {0: logging.WARNING, 1: logging.INFO}


class Command(BaseCommand):
    help = "Run a Durable worker: claim ready steps from the queues and run them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queues",
            default="",
            help="Comma-separated queues to serve (default: every configured queue).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="Steps run at once per queue (default: the queue's configured concurrency).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=30.0,
            help="Seconds running steps get to finish after SIGTERM before "
            "they are released for other workers.",
        )
        parser.add_argument(
            "--max-tasks",
            type=int,
            default=None,
            help="Drain and exit (status 0) after claiming this many tasks, for a supervisor "
            "to start a fresh process.",
        )
        parser.add_argument(
            "--max-memory",
            type=float,
            default=None,
            metavar="MB",
            help="Drain and exit (status 0) once resident memory exceeds this many MB.",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=None,
            help="Seconds between polls when no wake-up arrives "
            "(default: DURABLE['POLL_INTERVAL']).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            metavar="PORT",
            help="Serve Prometheus metrics at http://0.0.0.0:PORT/metrics "
            "(needs durable[prometheus]).",
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="Do not run the cron scheduler in this worker "
            "(DURABLE['SCHEDULER']['ENABLED'] = False turns it off in every worker).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._configure_logging(options["verbosity"])
        configured = durable_settings.queue_names()
        names = [q.strip() for q in options["queues"].split(",") if q.strip()] or configured
        unknown = [q for q in names if q not in configured]
        if unknown:
            raise CommandError(
                f"unknown queue(s) {', '.join(unknown)}; configured in "
                f"DURABLE['QUEUES']: {', '.join(configured)}"
            )
        concurrency = options["concurrency"]
        if concurrency is not None and concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        if options["shutdown_timeout"] < 0:
            raise CommandError("--shutdown-timeout must be >= 0")
        poll_interval = options["poll_interval"]
        if poll_interval is not None and not poll_interval > 0:
            raise CommandError("--poll-interval must be > 0")
        for option in ("max_tasks", "max_memory"):
            if options[option] is not None and not options[option] > 0:
                raise CommandError(f"--{option.replace('_', '-')} must be > 0")
        metrics_port = options["metrics_port"]
        if metrics_port is not None:
            if not 1 <= metrics_port <= 65535:
                raise CommandError("--metrics-port must be between 1 and 65535")
            if not metrics.available():
                raise CommandError(f"--metrics-port: {metrics.INSTALL_HINT}")
        queues = {q: concurrency or durable_settings.queue_concurrency(q) for q in names}
        adapter = durable_settings.queue_adapter_class(
            using=durable_settings.DATABASE, options=dict(durable_settings.QUEUE_OPTIONS)
        )
        worker = Worker(
            queues,
            adapter=adapter,
            lease_seconds=float(durable_settings.LEASE_SECONDS),
            poll_interval=poll_interval or float(durable_settings.POLL_INTERVAL),
            shutdown_timeout=options["shutdown_timeout"],
            max_tasks=options["max_tasks"],
            max_memory_mb=options["max_memory"],
        )
        served = self._serve_metrics(worker, metrics_port) if metrics_port is not None else None
        self._install_signal_handlers(worker)
        scheduler = None if options["no_scheduler"] else start_scheduler_thread()
        try:
            worker.run()
        finally:
            if scheduler is not None:
                scheduler.stop()
            if served is not None:
                served.close()
            adapter.close()
        if worker.abandoned_steps:
            # Their claims were released (or already failed as timed out); waiting for the
            # threads would keep a stopped worker alive for as long as the steps run.
            logging.getLogger("durable.worker").warning(
                "exiting with %d step thread(s) still running", worker.abandoned_steps
            )
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    @staticmethod
    def _serve_metrics(worker: Worker, port: int) -> metrics.WorkerMetrics:
        served = metrics.WorkerMetrics(
            capacity=worker.queues, in_flight=worker.in_flight, using=worker.adapter.using
        )
        try:
            served.serve(port)
        except OSError as exc:
            raise CommandError(f"--metrics-port {port}: {exc.strerror or exc}") from exc
        served.listen()
        worker.telemetry = Telemetry(served)
        logging.getLogger("durable.worker").info(
            "serving Prometheus metrics at http://0.0.0.0:%d/metrics", port
        )
        return served

    @staticmethod
    def _install_signal_handlers(worker: Worker) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if worker.stopping.is_set():
                # Second signal: exit now; leases expire and other workers retake the steps.
                os._exit(128 + signum)
            logging.getLogger("durable.worker").warning(
                "received %s: draining (send again to exit at once)", signal.Signals(signum).name
            )
            worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    @staticmethod
    def _configure_logging(verbosity: int) -> None:
        # Steps' INFO records are captured into their logs: let them through the root
        # logger's level (which defaults to WARNING) without adding any console output.
        root = logging.getLogger()
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)
        logger = logging.getLogger("durable")
        logger.setLevel(LEVELS.get(verbosity, logging.DEBUG))
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
            )
            logger.addHandler(handler)
