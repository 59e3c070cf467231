"""Django's Tasks API (the `django-tasks` backport) on Durable: `durable[tasks]`.

TASKS = {"default": {"BACKEND": "durable.tasks.DurableBackend"}}
"""

from __future__ import annotations

from durable.tasks.backend import DurableBackend
from durable.tasks.workflows import retry

__all__ = ["DurableBackend", "retry"]
