"""What the adapted peer tests share: the backend settings that replace Django's dummy and
immediate backends, and the worker that runs what they enqueue.

The worker is Durable's own executor, run inline by `durable.testing.run_until_idle`: the
claim -> execute -> checkpoint path a `durable_worker` thread takes, on the test database,
with real commits (the test cases are TransactionTestCases), so the lifecycle signals that
drive `task_started` and `task_finished` fire as they do in a worker.
"""

from __future__ import annotations

from typing import Any

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import TransactionTestCase, override_settings

from durable.tasks import framework
from durable.testing import run_until_idle

BACKEND = "durable.tasks.DurableBackend"

# Behaviour that Django 6.1 added (Task pickling, the run_after refusal in @task): the
# tests of it apply where the framework in use has it.
HAS_DJANGO_61_TASKS = framework.NATIVE and django.VERSION >= (6, 1)

# Every queue name the peer tests make tasks on, so that Durable's workers serve them. A
# backend with an empty QUEUES accepts the queues of DURABLE["QUEUES"] (not any name, as
# Django's own backends do: no Durable worker would run a task on another queue), so the
# names the tests expect a backend's QUEUES to refuse ("unknown_queue", "queue-2") are
# configured here, and refused by the backend's QUEUES as the tests expect.
QUEUES = ("default", "queue_1", "queue-1", "queue-2", "unknown_queue", "high")


def durable_settings(**overrides: Any) -> dict[str, Any]:
    return {
        **settings.DURABLE,
        "QUEUES": {name: {"concurrency": 1} for name in QUEUES},
        **overrides,
    }


def tasks_settings(**backends: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """TASKS with DurableBackend as every alias, each with the extra params given."""
    return {alias: {"BACKEND": BACKEND, **params} for alias, params in backends.items()}


def ran(result: Any) -> Any:
    """`result` after the worker ran everything that is due, as stored now."""
    run_until_idle()
    result.refresh()
    return result


async def aran(result: Any) -> Any:
    await sync_to_async(run_until_idle)()
    await result.arefresh()
    return result


@override_settings(DURABLE=durable_settings())
class DurableTestCase(TransactionTestCase):
    """What replaces SimpleTestCase: DurableBackend keeps its results in the database,
    committed, so that a worker (and the signals of what it commits) sees them."""


# The logger of the framework's signal receivers.
TASKS_LOGGER = "django.tasks" if framework.NATIVE else "django_tasks"
