"""NatsBus beyond the shared contract (tests/bus/test_contract.py runs that on the real
server): a server that cannot be reached is a clear error, not a wait without end."""

from __future__ import annotations

import socket

import pytest

from durable.bus import MessageBusError
from durable.bus.nats import NatsBus


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_is_down_is_a_message_bus_error_naming_it():
    url = f"nats://127.0.0.1:{closed_port()}"
    bus = NatsBus(options={"url": url})
    try:
        with pytest.raises(MessageBusError, match=f"could not connect to {url} within 5s"):
            bus.publish("orders", {"n": 1})
        with pytest.raises(MessageBusError, match="Connect call failed"):
            bus.subscribe("orders")
        assert "orders" not in bus._subscriptions
    finally:
        bus.close()
