"""Every queue adapter on its real server, behind one fixture.

A server that is down skips its tests locally, with the reason; with CI set it fails them
(`tests.bus.conftest.require_server`). Each test gets its own queue-name prefix (and the
broker adapters a Redis database / stream / queue names of their own), so concurrent runs
on the shared servers never see each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils.module_loading import import_string

from durable.queue.base import QueueAdapter
from tests.bus.conftest import require_server

REDIS_URL = "redis://127.0.0.1:6379/11"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
NATS_URL = "nats://127.0.0.1:4222"

# name -> (class path, options, the server it needs)
ADAPTERS: dict[str, tuple[str, dict[str, Any], tuple[str, int] | None]] = {
    "database": ("durable.queue.database.DatabaseQueue", {}, None),
    "postgres": ("durable.queue.postgres.PostgresQueue", {}, None),
    "redis": ("durable.queue.redis.RedisQueue", {"url": REDIS_URL}, ("127.0.0.1", 6379)),
    "rabbitmq": (
        "durable.queue.rabbitmq.RabbitMQQueue",
        {"url": RABBITMQ_URL},
        ("127.0.0.1", 5672),
    ),
    "nats": ("durable.queue.nats.NatsQueue", {"url": NATS_URL}, ("127.0.0.1", 4222)),
}
BROKERS = ["redis", "rabbitmq", "nats"]
# Short timeouts, so redelivery and reconciliation happen within a test.
TEST_OPTIONS: dict[str, dict[str, Any]] = {
    "redis": {"visibility_timeout": 1, "reconcile_grace": 0.01},
    "rabbitmq": {"reconcile_grace": 0.01},
    "nats": {"ack_wait": 1, "reconcile_grace": 0.01},
}


def require_adapter(name: str) -> None:
    _, _, server = ADAPTERS[name]
    if name == "postgres" and connection.vendor != "postgresql":
        pytest.skip("PostgresQueue runs in the PostgreSQL test run (DATABASE_URL=postgres://...)")
    if server is not None:
        require_server(name, server)


def adapter_settings(name: str, prefix: str, **options: Any) -> tuple[str, dict[str, Any]]:
    """(QUEUE_ADAPTER, QUEUE_OPTIONS) for adapter `name` under its own `prefix`."""
    path, defaults, _ = ADAPTERS[name]
    return path, {**defaults, "prefix": prefix, **options} if name in BROKERS else {}


MakeAdapter = Callable[[], QueueAdapter]


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=list(ADAPTERS))
def adapter_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_adapter(
    transactional_db: None, settings: Any, adapter_name: str, queue_prefix: str
) -> Iterator[MakeAdapter]:
    """make_adapter() -> a new adapter (a separate consumer), closed after the test.

    The process's own adapter (which publishes what `durable.start` makes ready, after
    commit) is configured with the same options.
    """
    require_adapter(adapter_name)
    path, options = adapter_settings(
        adapter_name, queue_prefix, **TEST_OPTIONS.get(adapter_name, {})
    )
    settings.DURABLE = {**settings.DURABLE, "QUEUE_ADAPTER": path, "QUEUE_OPTIONS": options}
    made: list[QueueAdapter] = []

    def make() -> QueueAdapter:
        adapter: QueueAdapter = import_string(path)(options=options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()
    if adapter_name in BROKERS:
        from tests.queue.brokers import delete_everything

        cleaner = import_string(path)(options=options)
        try:
            delete_everything(cleaner)
        finally:
            cleaner.close()
