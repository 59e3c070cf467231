"""Broker adapter configuration: system checks (a missing client names its extra, bad
options are E016), capabilities as data, and what needs no broker to check."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.test import override_settings
from django.utils import timezone

import durable
from durable.engine.reconciler import Reconciler
from durable.models import Task
from durable.queue.database import DatabaseQueue
from durable.queue.kafka import KafkaQueue
from durable.queue.nats import NatsQueue
from durable.queue.rabbitmq import RabbitMQQueue
from durable.queue.redis import RedisQueue
from tests.integration import workflows as wf

ADAPTER_CLIENTS = [
    ("durable.queue.redis.RedisQueue", "redis", "redis"),
    ("durable.queue.rabbitmq.RabbitMQQueue", "pika", "rabbitmq"),
    ("durable.queue.nats.NatsQueue", "nats", "nats"),
    ("durable.queue.kafka.KafkaQueue", "confluent_kafka", "kafka"),
]


def messages_with(id_: str, **durable_setting: object) -> list:
    with override_settings(DURABLE=durable_setting):
        return [m for m in run_checks(tags=["durable"]) if m.id == id_]


@pytest.mark.parametrize(("path", "client", "extra"), ADAPTER_CLIENTS)
def test_a_missing_client_is_e014_naming_the_extra(monkeypatch, path, client, extra):
    monkeypatch.setitem(sys.modules, client, None)  # what `import client` sees when absent
    monkeypatch.delitem(sys.modules, path.rpartition(".")[0], raising=False)

    found = messages_with("durable.E014", QUEUE_ADAPTER=path)

    assert [m.hint for m in found] == [f"pip install durable[{extra}]"]


@pytest.mark.parametrize(("path", "client", "extra"), ADAPTER_CLIENTS)
def test_default_broker_options_pass_every_check(settings, path, client, extra):
    with override_settings(DURABLE={**settings.DURABLE, "QUEUE_ADAPTER": path}):
        problems = [m for m in run_checks(tags=["durable"]) if m.is_serious()]
    assert problems == []


@pytest.mark.parametrize(
    ("path", "options", "names"),
    [
        ("durable.queue.redis.RedisQueue", {"url": "http://x"}, "url"),
        ("durable.queue.redis.RedisQueue", {"prefix": ""}, "prefix"),
        ("durable.queue.rabbitmq.RabbitMQQueue", {"max_priority": 0}, "max_priority"),
        ("durable.queue.rabbitmq.RabbitMQQueue", {"reconcile_interval": 0}, "reconcile_interval"),
        ("durable.queue.nats.NatsQueue", {"url": "redis://x"}, "url"),
        ("durable.queue.nats.NatsQueue", {"reconcile_grace": "1"}, "reconcile_grace"),
        ("durable.queue.kafka.KafkaQueue", {"bootstrap_servers": ""}, "bootstrap_servers"),
        ("durable.queue.kafka.KafkaQueue", {"client_config": []}, "client_config"),
    ],
)
def test_bad_broker_options_are_e016_naming_the_option(path, options, names):
    found = messages_with("durable.E016", QUEUE_ADAPTER=path, QUEUE_OPTIONS=options)

    assert len(found) == 1
    assert f"[{names!r}]" in found[0].msg


def test_capabilities_say_what_each_broker_cannot_do():
    assert not DatabaseQueue.capabilities.holds_messages
    assert RedisQueue.capabilities.supports_priority
    assert RedisQueue.capabilities.supports_delay
    assert RabbitMQQueue.capabilities.supports_priority
    assert RabbitMQQueue.capabilities.supports_delay
    assert not NatsQueue.capabilities.supports_priority
    assert NatsQueue.capabilities.supports_delay
    assert not KafkaQueue.capabilities.supports_priority
    assert not KafkaQueue.capabilities.supports_delay
    assert all(
        cls.capabilities.holds_messages
        for cls in (RedisQueue, RabbitMQQueue, NatsQueue, KafkaQueue)
    )


def test_kafka_options_become_topics_group_and_client_config():
    adapter = KafkaQueue(
        options={
            "prefix": "shop",
            "bootstrap_servers": "k1:9092,k2:9092",
            "client_config": {"security.protocol": "SSL"},
        }
    )

    assert adapter.topic("payments") == "shop.payments"
    assert adapter.group == "shop.workers"
    assert adapter._config(**{"group.id": "g"}) == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "SSL",
        "group.id": "g",
    }
    adapter.close()  # nothing was connected: closing needs no broker


@pytest.mark.django_db
def test_the_reconciler_leaves_database_adapters_alone():
    durable.start(wf.OneStep, {})
    Task.objects.update(run_at=timezone.now() - timedelta(hours=1))
    reconciler = Reconciler(DatabaseQueue(), ["default"])
    reconciler._next = 0.0

    assert reconciler.maybe_run() == 0
