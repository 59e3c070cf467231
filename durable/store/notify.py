"""Announcing that work became ready, so idle workers wake without waiting for a poll.

On PostgreSQL the announcement is a NOTIFY sent inside the writing transaction: it is
delivered only if the transaction commits, and only carries queue names (never data).
Everywhere, in-process listeners (a worker in the same process) are woken after commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connections, transaction

from durable.models import Task

CHANNEL = "durable_ready"

_listeners: list[Callable[[set[str]], None]] = []
_lock = threading.Lock()


@dataclass(frozen=True)
class ReadyTask:
    """A task that became claimable at `run_at`: what a broker queue adapter publishes."""

    task_id: int
    queue: str
    priority: int
    run_at: datetime


# Called after commit with the tasks that became ready (broker adapters publish them).
_task_listeners: list[Callable[[list[ReadyTask]], None]] = []


def add_task_listener(listener: Callable[[list[ReadyTask]], None]) -> None:
    with _lock:
        if listener not in _task_listeners:
            _task_listeners.append(listener)


def remove_task_listener(listener: Callable[[list[ReadyTask]], None]) -> None:
    with _lock:
        if listener in _task_listeners:
            _task_listeners.remove(listener)


def announce_tasks(tasks: Iterable[Task], using: str, *, wake: bool = True) -> None:
    """`announce` for tasks that became ready or got a new due time; task listeners get
    them after commit. `wake=False` tells task listeners only (a step parked until later)."""
    ready = [ReadyTask(t.id, t.queue, t.priority, t.run_at) for t in tasks]
    if not ready:
        return
    if wake:
        announce({r.queue for r in ready}, using)

    def publish() -> None:
        with _lock:
            listeners = list(_task_listeners)
        for listener in listeners:
            listener(ready)

    transaction.on_commit(publish, using=using)


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
