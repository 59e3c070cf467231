"""The message bus contract, run against every adapter on its real server."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from durable.bus import MessageBus
from durable.models import BusPayload
from durable.serialization import NotJSONError, dumps
from durable.store import bus_payloads
from tests.bus.conftest import publish_from_another_process

WAIT = 10.0  # generous: a message that arrives arrives within milliseconds
LARGE = {"blob": "x" * 50_000, "unicode": "ünïcødé ✓ 日本", "nested": {"numbers": list(range(50))}}


def sent_by_reference(bus: MessageBus, message: dict[str, object]) -> bool:
    limit = bus.max_payload_bytes
    return limit is not None and len(dumps(message).encode()) > limit


def cleanup_payloads() -> int:
    return bus_payloads.delete_older_than(timezone.now() + timedelta(seconds=1), using="default")


def test_a_subscriber_receives_what_is_published_after_it_subscribed_in_order(bus, topic):
    bus.publish(topic, {"n": "before"})
    subscription = bus.subscribe(topic)
    for n in range(50):
        bus.publish(topic, {"n": n})
    assert [subscription.get(timeout=WAIT) for _ in range(50)] == [{"n": n} for n in range(50)]
    assert subscription.get(timeout=0.3) is None


def test_topics_are_isolated(bus, topic):
    mine = bus.subscribe(topic)
    other = bus.subscribe(topic + ".other")
    bus.publish(topic + ".other", {"for": "other"})
    bus.publish(topic, {"for": "mine"})
    assert mine.get(timeout=WAIT) == {"for": "mine"}
    assert other.get(timeout=WAIT) == {"for": "other"}
    assert mine.get(timeout=0.3) is None
    assert other.get(timeout=0.3) is None


def test_long_and_unusual_topic_names_are_distinct_topics(bus, topic):
    long_one, long_two = topic + "." + "a" * 300, topic + "." + "a" * 299 + "b"
    odd = topic + " with spaces/slashes and ünïcode"
    subscriptions = {name: bus.subscribe(name) for name in (long_one, long_two, odd)}
    for name in subscriptions:
        bus.publish(name, {"topic": name})
    for name, subscription in subscriptions.items():
        assert subscription.get(timeout=WAIT) == {"topic": name}
        assert subscription.get(timeout=0.3) is None


def test_every_subscriber_gets_every_message(bus, topic):
    first, second = bus.subscribe(topic), bus.subscribe(topic)
    bus.publish(topic, {"n": 1})
    bus.publish(topic, {"n": 2})
    assert [first.get(timeout=WAIT), first.get(timeout=WAIT)] == [{"n": 1}, {"n": 2}]
    assert [second.get(timeout=WAIT), second.get(timeout=WAIT)] == [{"n": 1}, {"n": 2}]


def test_another_bus_instance_reaches_subscribers_if_it_crosses_processes(make_bus, adapter, topic):
    publisher, listener = make_bus(adapter), make_bus(adapter)
    subscription = listener.subscribe(topic)
    publisher.publish(topic, {"n": 1})
    if publisher.capabilities.delivers_across_processes:
        assert subscription.get(timeout=WAIT) == {"n": 1}
    else:  # an in-process bus reaches the subscribers of its own instance only
        assert subscription.get(timeout=1) is None


def test_unsubscribe_stops_delivery_and_ends_iteration(bus, topic):
    leaving, staying = bus.subscribe(topic), bus.subscribe(topic)
    bus.publish(topic, {"n": 1})
    assert leaving.get(timeout=WAIT) == {"n": 1}
    bus.unsubscribe(leaving)
    bus.publish(topic, {"n": 2})
    assert staying.get(timeout=WAIT) == {"n": 1}
    assert staying.get(timeout=WAIT) == {"n": 2}
    assert leaving.get(timeout=0.3) is None
    assert list(leaving) == []
    staying.close()
    staying.close()  # idempotent
    # With no subscriptions left the transport subscription is gone; a new one still works.
    bus.publish(topic, {"n": 3})
    with bus.subscribe(topic) as again:
        bus.publish(topic, {"n": 4})
        assert again.get(timeout=WAIT) == {"n": 4}


def test_iterating_a_subscription_yields_messages_until_it_is_closed(bus, topic):
    subscription = bus.subscribe(topic)
    for n in range(3):
        bus.publish(topic, {"n": n})
    received = []
    for message in subscription:
        received.append(message)
        if len(received) == 3:
            subscription.close()
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_get_returns_none_when_the_timeout_passes(bus, topic):
    subscription = bus.subscribe(topic)
    started = time.monotonic()
    assert subscription.get(timeout=0.3) is None
    assert time.monotonic() - started >= 0.29


def test_a_50_kb_message_arrives_intact_and_its_reference_row_can_be_cleaned_up(bus, topic):
    subscription = bus.subscribe(topic)
    bus.publish(topic, LARGE)
    bus.publish(topic, {"after": "large"})
    assert subscription.get(timeout=WAIT) == LARGE
    assert subscription.get(timeout=WAIT) == {"after": "large"}
    by_reference = sent_by_reference(bus, LARGE)
    assert BusPayload.objects.count() == (1 if by_reference else 0)
    assert cleanup_payloads() == (1 if by_reference else 0)
    assert not BusPayload.objects.exists()


def test_messages_over_max_payload_bytes_go_by_reference(make_bus, adapter, topic):
    bus = make_bus(adapter, max_payload_bytes=1000)
    subscription = bus.subscribe(topic)
    small, large = {"size": "small"}, {"size": "large", "pad": "y" * 2000}
    bus.publish(topic, small)
    bus.publish(topic, large)
    assert subscription.get(timeout=WAIT) == small
    assert subscription.get(timeout=WAIT) == large
    assert list(BusPayload.objects.values_list("topic", "payload")) == [(topic, large)]


def test_a_message_that_looks_like_a_reference_arrives_as_sent(bus, topic):
    subscription = bus.subscribe(topic)
    bus.publish(topic, {"$ref": 1})
    assert subscription.get(timeout=WAIT) == {"$ref": 1}


def test_a_reference_whose_row_is_gone_is_skipped_with_a_warning(make_bus, adapter, topic, caplog):
    bus = make_bus(adapter, max_payload_bytes=100)
    subscription = bus.subscribe(topic)
    bus.publish(topic, {"pad": "z" * 500})
    bus.publish(topic, {"n": "small"})
    time.sleep(0.5)  # let both arrive before the row disappears
    cleanup_payloads()
    with caplog.at_level(logging.WARNING, logger="durable.bus"):
        assert subscription.get(timeout=WAIT) == {"n": "small"}
    assert "is gone" in caplog.text


def test_messages_cross_process_boundaries_when_the_adapter_says_so(bus, adapter, topic):
    subscription = bus.subscribe(topic)
    messages = [{"n": 1}, {"n": 2}, LARGE]
    publish_from_another_process(adapter, topic, messages)
    if bus.capabilities.delivers_across_processes:
        assert [subscription.get(timeout=WAIT) for _ in messages] == messages
    else:
        assert subscription.get(timeout=1) is None


def test_the_async_variant_receives_in_order_and_ends_when_closed(bus, topic):
    async def scenario() -> list[object]:
        subscription = await bus.asubscribe(topic)
        async with subscription:
            for message in ({"n": 1}, {"n": 2}, LARGE):
                await bus.apublish(topic, message)
            received = [await subscription.get(timeout=WAIT) for _ in range(3)]
            received.append(await subscription.get(timeout=0.3))
        received.append([message async for message in subscription])
        # Close the database connection `apublish` opened in asgiref's worker thread.
        await sync_to_async(connections.close_all)()
        return received

    assert asyncio.run(scenario()) == [{"n": 1}, {"n": 2}, LARGE, None, []]


def test_publishing_non_json_raises_a_clear_error(bus, topic):
    with pytest.raises(NotJSONError, match=r"message\['when'\]: a object is not JSON"):
        bus.publish(topic, {"when": object()})
    with pytest.raises(NotJSONError, match="NaN"):
        bus.publish(topic, {"ratio": float("nan")})
    with pytest.raises(NotJSONError, match="a message must be a dict, got list"):
        bus.publish(topic, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a topic must be a non-empty str"):
        bus.publish("", {})


def test_close_ends_every_subscription(make_bus, adapter, topic):
    bus = make_bus(adapter)
    subscription = bus.subscribe(topic)
    bus.close()
    assert subscription.get(timeout=WAIT) is None
