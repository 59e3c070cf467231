"""What only PostgresBus does: transactional NOTIFY, its payload limit, reconnecting."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import connection, transaction

from durable.models import BusPayload
from durable.serialization import dumps
from tests.bus.conftest import MakeBus

WAIT = 10.0


@pytest.fixture
def pg_bus(make_bus: MakeBus):
    return make_bus("postgres")


def test_a_message_published_in_a_transaction_is_delivered_on_commit_only(pg_bus, topic):
    subscription = pg_bus.subscribe(topic)
    with transaction.atomic():
        pg_bus.publish(topic, {"n": 1})
        assert subscription.get(timeout=0.5) is None
    assert subscription.get(timeout=WAIT) == {"n": 1}

    def publish_then_roll_back() -> None:
        with transaction.atomic():
            pg_bus.publish(topic, {"n": 2})
            pg_bus.publish(topic, {"n": 3, "pad": "p" * 10_000})
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        publish_then_roll_back()
    pg_bus.publish(topic, {"n": 4})
    assert subscription.get(timeout=WAIT) == {"n": 4}
    assert not BusPayload.objects.exists()  # the large message's row rolled back with it


def test_the_largest_notify_payload_goes_inline_and_one_byte_more_by_reference(pg_bus, topic):
    subscription = pg_bus.subscribe(topic)
    largest = {"x": "a" * (pg_bus.max_payload_bytes - len(dumps({"x": ""})))}
    assert len(dumps(largest)) == pg_bus.max_payload_bytes == 7999
    pg_bus.publish(topic, largest)
    assert subscription.get(timeout=WAIT) == largest
    assert not BusPayload.objects.exists()
    one_more = {"x": largest["x"] + "a"}
    pg_bus.publish(topic, one_more)
    assert subscription.get(timeout=WAIT) == one_more
    assert BusPayload.objects.count() == 1


def test_the_listener_reconnects_and_listens_again_after_losing_its_connection(
    pg_bus, topic, caplog
):
    subscription = pg_bus.subscribe(topic)
    with caplog.at_level(logging.WARNING, logger="durable.bus"):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'durable-bus' AND datname = current_database()"
            )
            assert cursor.fetchone() == (1,)
        # Messages published while it is away are lost; keep publishing until one arrives.
        deadline = time.monotonic() + 30
        while (message := subscription.get(timeout=0.2)) is None:
            assert time.monotonic() < deadline, "the listener never came back"
            pg_bus.publish(topic, {"probe": True})
    assert message == {"probe": True}
    assert "PostgresBus connection lost" in caplog.text
    while subscription.get(timeout=0.5) is not None:  # drain the other probes
        pass
    pg_bus.publish(topic, {"n": "after"})
    assert subscription.get(timeout=WAIT) == {"n": "after"}
