"""Choosing the bus from settings, and the system checks that guard that choice."""

from __future__ import annotations

import sys

import pytest
from django.core.checks import run_checks
from django.db import connection
from django.test import override_settings

from durable.bus import get_bus, reset_bus
from durable.bus.memory import InMemoryBus
from durable.bus.postgres import PostgresBus


@pytest.fixture(autouse=True)
def _fresh_bus():
    reset_bus()
    yield
    reset_bus()


def bus_check_ids(**durable: object) -> set[str]:
    with override_settings(DURABLE=durable):
        messages = run_checks(tags=["durable"])
    return {m.id for m in messages if m.id in {"durable.E011", "durable.E012", "durable.E013"}}


def bus_check_messages(**durable: object) -> list[str]:
    with override_settings(DURABLE=durable):
        messages = run_checks(tags=["durable"])
    return [f"{m.msg} {m.hint}" for m in messages if m.id.startswith("durable.E01")]


def test_the_default_bus_is_postgres_on_postgresql_and_in_memory_elsewhere():
    expected = PostgresBus if connection.vendor == "postgresql" else InMemoryBus
    assert type(get_bus()) is expected


def test_get_bus_is_one_instance_rebuilt_when_settings_change():
    bus = get_bus()
    assert get_bus() is bus
    subscription = bus.subscribe("registry.topic")
    with override_settings(
        DURABLE={
            "MESSAGE_BUS": "durable.bus.memory.InMemoryBus",
            "MESSAGE_BUS_OPTIONS": {"max_payload_bytes": 4096},
        }
    ):
        replaced = get_bus()
        assert replaced is not bus
        assert isinstance(replaced, InMemoryBus)
        assert replaced.max_payload_bytes == 4096
    assert subscription.get(timeout=1) is None  # the old bus was closed, ending it


def test_the_test_project_passes_the_bus_checks():
    assert bus_check_ids() == set()


@pytest.mark.parametrize(
    "path", ["durable.bus.nope.Missing", "durable.conf.DurableSettings", "not a path"]
)
def test_an_unimportable_or_wrong_bus_is_e011(path):
    assert bus_check_ids(MESSAGE_BUS=path) == {"durable.E011"}


@pytest.mark.parametrize(
    ("path", "library", "extra"),
    [
        ("durable.bus.redis.RedisBus", "redis", "durable[redis]"),
        ("durable.bus.rabbitmq.RabbitMQBus", "pika", "durable[rabbitmq]"),
        ("durable.bus.nats.NatsBus", "nats", "durable[nats]"),
    ],
)
def test_a_bus_whose_client_library_is_missing_is_e012_naming_the_extra(
    monkeypatch, path, library, extra
):
    # None in sys.modules makes `import library` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, library, None)
    monkeypatch.delitem(sys.modules, path.rsplit(".", 1)[0], raising=False)
    assert bus_check_ids(MESSAGE_BUS=path) == {"durable.E012"}
    assert any(f"pip install {extra}" in text for text in bus_check_messages(MESSAGE_BUS=path))


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("durable.bus.memory.InMemoryBus", {"max_payload_bytes": 10}),
        ("durable.bus.memory.InMemoryBus", {"max_payload_bytes": "1MB"}),
        ("durable.bus.redis.RedisBus", {"url": "localhost:6379"}),
        ("durable.bus.rabbitmq.RabbitMQBus", {"url": "redis://127.0.0.1"}),
        ("durable.bus.rabbitmq.RabbitMQBus", {"exchange": ""}),
        ("durable.bus.channels.ChannelsBus", {"alias": "nope"}),
        ("durable.bus.nats.NatsBus", {"url": "redis://127.0.0.1"}),
    ],
)
def test_bad_bus_options_are_e013(path, options):
    assert bus_check_ids(MESSAGE_BUS=path, MESSAGE_BUS_OPTIONS=options) == {"durable.E013"}


def test_postgres_bus_on_another_database_is_e013():
    expected = set() if connection.vendor == "postgresql" else {"durable.E013"}
    assert bus_check_ids(MESSAGE_BUS="durable.bus.postgres.PostgresBus") == expected
