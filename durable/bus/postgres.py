"""`PostgresBus`: `pg_notify` to publish, LISTEN on a dedicated autocommit connection.

Publishing goes through Durable's own database connection, so a message published inside a
transaction is delivered when it commits, and never if it rolls back; so is a large
message's payload row, which commits with it. NOTIFY payloads must be shorter than 8,000
bytes: larger messages go by reference. A topic becomes a channel name of at most 63 bytes
(PostgreSQL's identifier limit), a digest of the topic when it is longer.
"""

from __future__ import annotations

import select
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import psycopg
from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.db import connections
from psycopg import sql

from durable.bus.base import Capabilities, transport_name
from durable.bus.polling import PollingBus
from durable.conf import durable_settings
from durable.store.sql import send

MAX_IDENTIFIER_BYTES = 63
NOTIFY_MANY = (
    "SELECT count(pg_notify(channel, payload)) "
    "FROM unnest(%(channels)b::text[], %(payloads)b::text[]) AS m(channel, payload)"
)


class PostgresBus(PollingBus):
    capabilities: ClassVar[Capabilities] = Capabilities(max_payload_bytes=7999)

    def transport_name(self, topic: str) -> str:
        return transport_name(topic, max_length=MAX_IDENTIFIER_BYTES)

    def joins_transaction(self, using: str) -> bool:
        return using == self.using and connections[using].in_atomic_block

    def _send(self, topic: str, data: str) -> None:
        self._send_many([(topic, data)])

    def _send_many(self, messages: Sequence[tuple[str, str]]) -> None:
        # One statement for all, however many (an event goes to its workflow's channel and
        # the global one; a claim of a thousand steps announces two thousand events).
        channels = [self.transport_name(topic) for topic, _ in messages]
        payloads = [data for _, data in messages]
        send(self.using, NOTIFY_MANY, {"channels": channels, "payloads": payloads}).result()

    def _connect(self) -> psycopg.Connection[Any]:
        params = connections[self.using].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("server_side_binding", None)
        # Named, so pg_stat_activity tells an operator what this connection is.
        params.setdefault("application_name", "durable-bus")
        # Notice a peer that vanished without closing the socket, instead of waiting forever.
        params.setdefault("keepalives", 1)
        params.setdefault("keepalives_idle", 30)
        params.setdefault("keepalives_interval", 10)
        params.setdefault("keepalives_count", 3)
        return psycopg.connect(**params, autocommit=True)

    def _add(self, connection: psycopg.Connection[Any], name: str) -> None:
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))

    def _remove(self, connection: psycopg.Connection[Any], name: str) -> None:
        connection.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(name)))

    def _receive(
        self, connection: psycopg.Connection[Any], timeout: float
    ) -> Iterable[tuple[str, str]]:
        # Notifications read with an earlier statement wait in psycopg's backlog.
        received = _pending(connection)
        if received:
            return received
        # Wait for the server or a subscription change, whichever comes first: a new
        # subscription is applied at once, not at the end of the tick.
        server, wakeup = connection.fileno(), self.wakeup_socket.fileno()
        ready, _, _ = select.select([server, wakeup], [], [], timeout)
        if wakeup in ready:
            self.clear_wakeups()
        return _pending(connection) if server in ready else []

    def _disconnect(self, connection: psycopg.Connection[Any]) -> None:
        connection.close()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages = super().check(options)
        alias = durable_settings.DATABASE
        engine = str(settings.DATABASES.get(alias, {}).get("ENGINE", ""))
        if "postgresql" not in engine:
            messages.append(
                Error(
                    f"PostgresBus needs PostgreSQL, but the database {alias!r} is "
                    f"{engine or 'unset'}.",
                    hint="use durable.bus.memory.InMemoryBus, or a broker-backed bus.",
                    id="durable.E013",
                )
            )
        return messages


def _pending(connection: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """The notifications already received, without waiting."""
    return [(note.channel, note.payload) for note in connection.notifies(timeout=0)]
