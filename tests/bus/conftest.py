"""Every bus adapter, on its real server.

A server that is down skips its tests locally, with the reason; with CI set it fails them,
so a missing service can never pass silently. PostgresBus publishes through Durable's own
database connection, so it runs in the PostgreSQL test run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils.module_loading import import_string

from durable.bus import MessageBus
from tests.support.workers import REPO, test_database_url

REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)
NATS = ("127.0.0.1", 4222)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": f"durable-tests-{os.getpid()}"},
    }
}
# name -> (class path, options, the server it needs)
ADAPTERS: dict[str, tuple[str, dict[str, Any], tuple[str, int] | None]] = {
    "memory": ("durable.bus.memory.InMemoryBus", {}, None),
    "postgres": ("durable.bus.postgres.PostgresBus", {}, None),
    "redis": ("durable.bus.redis.RedisBus", {"url": "redis://127.0.0.1:6379/0"}, REDIS),
    "channels": ("durable.bus.channels.ChannelsBus", {}, REDIS),
    "rabbitmq": (
        "durable.bus.rabbitmq.RabbitMQBus",
        {"url": "amqp://guest:guest@127.0.0.1:5672/%2F"},
        RABBITMQ,
    ),
    "nats": ("durable.bus.nats.NatsBus", {"url": "nats://127.0.0.1:4222"}, NATS),
}

MakeBus = Callable[..., MessageBus]


def require_server(name: str, address: tuple[str, int]) -> None:
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        problem = f"{name} is not reachable on {address[0]}:{address[1]} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI is set, so a missing server fails the test")
        pytest.skip(problem)


def require_adapter(name: str) -> None:
    _, _, server = ADAPTERS[name]
    if name == "postgres" and connection.vendor != "postgresql":
        pytest.skip("PostgresBus runs in the PostgreSQL test run (DATABASE_URL=postgres://...)")
    if server is not None:
        require_server(name, server)


@pytest.fixture
def make_bus(transactional_db: None, settings: Any) -> Iterator[MakeBus]:
    """make_bus("redis", max_payload_bytes=1000) -> a new bus, closed after the test."""
    buses: list[MessageBus] = []
    settings.CHANNEL_LAYERS = CHANNEL_LAYERS

    def make(name: str, **options: Any) -> MessageBus:
        require_adapter(name)
        path, defaults, _ = ADAPTERS[name]
        bus: MessageBus = import_string(path)(options={**defaults, **options})
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close()


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus(make_bus: MakeBus, adapter: str) -> MessageBus:
    return make_bus(adapter)


@pytest.fixture
def topic() -> str:
    """A topic no other test (or concurrent test run on the same servers) uses."""
    return f"test.{uuid.uuid4().hex}"


def publish_from_another_process(
    adapter: str, topic: str, messages: list[dict[str, Any]], **options: Any
) -> None:
    path, defaults, _ = ADAPTERS[adapter]
    args = [
        sys.executable, "-m", "tests.bus.publisher",
        path, json.dumps({**defaults, **options}), topic, json.dumps(messages),
        json.dumps(CHANNEL_LAYERS),
    ]  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
