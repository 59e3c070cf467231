from __future__ import annotations

import importlib.util

import django
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
        # Django's Tasks framework: built in since Django 6.0, the django-tasks backport on
        # 5.2 (durable.tasks.framework makes the same choice). Workflows of tasks are made
        # from their names, and the framework's signals follow Durable's.
        if django.VERSION >= (6, 0) or importlib.util.find_spec("django_tasks") is not None:
            from durable.tasks.workflows import install

            install()
