"""`python manage.py durable_send_event <workflow_id> <event> [--payload JSON]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = "Send an event to an execution; a step waiting for it wakes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument("event", help="The event's name.")
        parser.add_argument("--payload", default="null", help="The payload, as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        payload = cli.parse_json(options["payload"], "--payload")
        with cli.api_errors():
            api.send_event(options["workflow_id"], options["event"], payload)
        self.stdout.write(f"sent {options['event']!r} to {options['workflow_id']}")
