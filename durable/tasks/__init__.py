"""Django's Tasks framework on Durable: `django.tasks` on Django 6.0 and later, the
`django-tasks` backport (`durable[tasks]`) on Django 5.2.

TASKS = {"default": {"BACKEND": "durable.tasks.DurableBackend"}}
"""

from __future__ import annotations

from durable.tasks.backend import DurableBackend
from durable.tasks.workflows import retry

__all__ = ["DurableBackend", "retry"]
