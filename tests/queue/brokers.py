"""Broker-side helpers for tests: lose every message of an adapter's prefix (as a flushed
Redis or a broker restarted without its data would)."""

from __future__ import annotations

from durable.queue.broker import BrokerQueue


def lose_messages(adapter: BrokerQueue) -> None:
    from durable.queue.redis import RedisQueue

    if isinstance(adapter, RedisQueue):
        client = adapter._client
        keys = list(client.scan_iter(f"{adapter.prefix}:*"))
        if keys:
            client.delete(*keys)
        return
    raise NotImplementedError(type(adapter).__name__)


def delete_everything(adapter: BrokerQueue) -> None:
    """After a test: remove what the adapter's prefix created on the broker."""
    lose_messages(adapter)
