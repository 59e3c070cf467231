"""Broker-side helpers for tests: lose every message of an adapter's prefix (as a flushed
Redis or a broker restarted without its data would), and clean up after a test."""

from __future__ import annotations

from contextlib import suppress

from durable.conf import durable_settings
from durable.queue.broker import BrokerQueue
from durable.queue.rabbitmq import SHORTEST_DELAY_MS, RabbitMQQueue
from durable.queue.redis import RedisQueue


def lose_messages(adapter: BrokerQueue) -> None:
    if isinstance(adapter, RedisQueue):
        keys = list(adapter._client.scan_iter(f"{adapter.prefix}:*"))
        if keys:
            adapter._client.delete(*keys)
    elif isinstance(adapter, RabbitMQQueue):
        _rabbitmq_queues(adapter, delete=False)
    else:
        from durable.queue.nats import NatsQueue

        assert isinstance(adapter, NatsQueue), type(adapter)
        adapter.purge_stream()


def delete_everything(adapter: BrokerQueue) -> None:
    """After a test: remove what the adapter's prefix created on the broker."""
    if isinstance(adapter, RabbitMQQueue):
        _rabbitmq_queues(adapter, delete=True)
    elif isinstance(adapter, RedisQueue):
        lose_messages(adapter)
    else:
        from durable.queue.nats import NatsQueue

        assert isinstance(adapter, NatsQueue), type(adapter)
        adapter.delete_stream()


def _rabbitmq_queues(adapter: RabbitMQQueue, *, delete: bool) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(adapter.url))
    try:
        for queue in durable_settings.queue_names():
            ready = adapter.queue_name(queue)
            names = [ready] + [f"{ready}.delay.{SHORTEST_DELAY_MS * 2**k}" for k in range(32)]
            for name in names:
                channel = connection.channel()
                with suppress(pika.exceptions.ChannelClosedByBroker):
                    if delete:
                        channel.queue_delete(name)
                    else:
                        channel.queue_purge(name)
                if channel.is_open:
                    channel.close()
    finally:
        connection.close()
