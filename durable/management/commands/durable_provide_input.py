"""`python manage.py durable_provide_input <workflow_id> <input_name> --response JSON
[--user USERNAME]`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from durable import api
from durable.management import cli


class Command(BaseCommand):
    help = "Answer an input an execution waits for (validated against its schema)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow_id")
        parser.add_argument("input_name")
        parser.add_argument("--response", required=True, help="The response, as JSON.")
        parser.add_argument("--user", help="Record this user (a username) as the responder.")

    def handle(self, *args: Any, **options: Any) -> None:
        response = cli.parse_json(options["response"], "--response")
        user = None
        if options["user"] is not None:
            users = get_user_model()._default_manager
            try:
                user = users.get_by_natural_key(options["user"])
            except users.model.DoesNotExist:
                raise CommandError(f"no user with username {options['user']!r}") from None
        with cli.api_errors():
            api.provide_input(options["workflow_id"], options["input_name"], response, user=user)
        self.stdout.write(f"provided {options['input_name']!r} to {options['workflow_id']}")
