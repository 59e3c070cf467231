from __future__ import annotations

import importlib.util

from django.apps import AppConfig


class DurableConfig(AppConfig):
    name = "durable"
    verbose_name = "Durable workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from durable import (
            checks,  # noqa: F401  (registers the system checks)
            events,
        )
        from durable.discovery import autodiscover
        from durable.engine import adapters

        events.connect()
        adapters.connect()
        autodiscover()
        if importlib.util.find_spec("django_tasks") is not None:
            # Workflows of django-tasks tasks are made from their names (durable.tasks).
            from durable.tasks.workflows import install

            install()
