"""`python manage.py durable_fork <workflow_id> [--from-step NAME]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = (
        "Start a new execution linked to this one, from a step (default: the beginning) "
        "with the context saved before it; print its workflow id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument(
            "--from-step",
            default=None,
            help="A root-level step or block; a step inside a block starts its block.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with cli.api_errors():
            forked = api.fork(options["workflow_id"], from_step=options["from_step"])
        self.stdout.write(forked)
