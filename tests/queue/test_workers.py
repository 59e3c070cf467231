"""Real worker processes on every broker adapter: every DSL construct, a saga, waits, and
workflows that survive the broker losing every message (the reconciler recovers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.utils.module_loading import import_string

import durable
from durable.models import WorkflowExecution
from durable.queue.broker import BrokerQueue
from durable.testing import assert_workflow_completed, assert_workflow_failed
from tests.e2e.workflows import BookTrip, EveryConstruct
from tests.queue.brokers import delete_everything, lose_messages
from tests.queue.conftest import BROKERS, adapter_settings, require_adapter
from tests.queue.workflows import Hops
from tests.support.workers import WorkerPool, wait_until

pytestmark = pytest.mark.e2e

MODULES = "tests.e2e.workflows,tests.queue.workflows"


@dataclass
class Broker:
    name: str
    path: str
    options: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        return {
            "DURABLE_QUEUE_ADAPTER": self.path,
            "DURABLE_QUEUE_OPTIONS": json.dumps(self.options),
        }

    def adapter(self) -> BrokerQueue:
        adapter: BrokerQueue = import_string(self.path)(options=self.options)
        return adapter

    def start_workers(self, workers: WorkerPool, count: int) -> None:
        workers.start(count, env=self.env, workflow_modules=MODULES)


@pytest.fixture(params=BROKERS)
def broker(
    request: pytest.FixtureRequest, workers: WorkerPool, settings: Any, queue_prefix: str
) -> Iterator[Broker]:
    """A broker adapter for this process (which publishes what `durable.start` makes
    ready) and for the workers, under a prefix of its own; a fast reconciler."""
    name = str(request.param)
    if connection.vendor != "postgresql":
        # The broker paths are the same on every database, and real workers are slow:
        # they run once, in the PostgreSQL run (the contract suite runs on both).
        pytest.skip("broker end-to-end tests run in the PostgreSQL test run")
    require_adapter(name)
    path, options = adapter_settings(name, queue_prefix, reconcile_interval=1, reconcile_grace=1)
    settings.DURABLE = {**settings.DURABLE, "QUEUE_ADAPTER": path, "QUEUE_OPTIONS": options}
    broker = Broker(name, path, options)
    yield broker
    workers.stop_all()
    cleaner = broker.adapter()
    try:
        delete_everything(cleaner)
    finally:
        cleaner.close()


def test_every_construct_runs_on_two_workers(broker: Broker, workers: WorkerPool) -> None:
    broker.start_workers(workers, 2)
    wid = durable.start(EveryConstruct, {"amount": 500, "region": "eu", "items": [1, 2, 3]})

    execution = assert_workflow_completed(wid, timeout=60)

    assert execution.result == {"size": "big", "route": "eu", "total": 6}, workers.logs()
    assert execution.context["handled"] == [1, 2, 3]
    assert execution.context["flaky_succeeded_on"] == 3  # two retries, delayed by the broker


def test_a_failed_saga_compensates(broker: Broker, workers: WorkerPool) -> None:
    broker.start_workers(workers, 1)
    wid = durable.start(BookTrip, {})

    execution = assert_workflow_failed(wid, timeout=60)

    assert execution.status == "compensated", workers.logs()


def test_sleeps_and_events_wake_steps_through_the_broker(
    broker: Broker, workers: WorkerPool
) -> None:
    broker.start_workers(workers, 1)
    wid = durable.start(Hops, {"nap": 0.5})
    wait_until(
        lambda: WorkflowExecution.objects.filter(
            workflow_id=wid, status="waiting", current_step="wait_go"
        ).exists(),
        timeout=30,
        message=workers.logs,
    )

    durable.send_event(wid, "go", {"ok": True})

    assert assert_workflow_completed(wid, timeout=30).result == {"ok": True}


def test_no_workflow_is_lost_when_the_broker_loses_its_messages(
    broker: Broker, workers: WorkerPool
) -> None:
    broker.start_workers(workers, 2)
    wids = [durable.start(Hops, {"nap": 1, "timeout": 2}) for _ in range(20)]
    wait_until(
        lambda: (
            WorkflowExecution.objects.filter(workflow_id__in=wids, status="waiting").count() >= 5
        ),
        timeout=60,
        message=workers.logs,
    )

    adapter = broker.adapter()
    try:
        lose_messages(adapter)  # flushed, purged: sleeping and ready work alike
    finally:
        adapter.close()

    for wid in wids:
        assert assert_workflow_completed(wid, timeout=90).result == "timed out", workers.logs()
    assert "reconciler" in workers.logs()
