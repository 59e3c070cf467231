"""Announcing that work became ready, so idle workers wake without waiting for a poll.

On PostgreSQL the announcement is a NOTIFY sent inside the writing transaction: it is
delivered only if the transaction commits, and only carries queue names (never data).
Everywhere, in-process listeners (a worker in the same process) are woken after commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from django.db import connections, transaction

CHANNEL = "durable_ready"

_listeners: list[Callable[[set[str]], None]] = []
_lock = threading.Lock()


def add_listener(listener: Callable[[set[str]], None]) -> None:
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[set[str]], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def announce(queues: Iterable[str], using: str) -> None:
    """Call inside the transaction that made tasks ready in `queues`."""
    names = set(queues)
    if not names:
        return
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for name in sorted(names):
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, name])

    def wake_local() -> None:
        with _lock:
            listeners = list(_listeners)
        for listener in listeners:
            listener(names)

    transaction.on_commit(wake_local, using=using)
