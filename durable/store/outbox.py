"""The outbox: what a write of the store makes known, once its transaction commits.

Three kinds of effect leave a transaction, and they all go through here:

- wake-ups: the queues that got ready work. On PostgreSQL a NOTIFY inside the transaction
  (delivered only if it commits; it carries queue names, never data); in this process,
  the waiting workers are woken after commit (`add_wake_listener`).
- ready tasks, handed after commit to the queue adapter's publisher: a broker adapter
  publishes one message per task (`durable.engine.adapters.publish_ready`).
- lifecycle events: published on the message bus inside the transaction when the bus
  joins it (PostgresBus), after commit otherwise (`durable.events`); then sent to the
  Django signals (durable.signals), for in-process receivers.

Where the last two go is wired once, in `durable.apps`, through `connect`: the store sits
below the bus and the queue adapters and imports neither.

Writers add effects as they go. Inside a `collecting` block (a checkpoint's batch, a
claim) they are gathered and sent together when the block ends, still inside its
transaction: one NOTIFY statement for every queue, one bus publish for every event.
Outside one, each is sent at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db import connections, transaction

from durable.signals import send_now
from durable.store.backend import backend

CHANNEL = "durable_ready"


@dataclass(frozen=True)
class ReadyTask:
    """A task that became claimable at `run_at`: what a broker queue adapter publishes."""

    task_id: int
    queue: str
    priority: int
    run_at: datetime


# Publishes events inside the current transaction of a database alias if the bus can;
# returns whether it did.
EventPublisher = Callable[[Sequence[dict[str, Any]], str], bool]
# Publishes events after commit (those that did not ride their transaction).
LateEventPublisher = Callable[[Sequence[dict[str, Any]]], None]
TaskPublisher = Callable[[list[ReadyTask]], None]


@dataclass
class _Sinks:
    events: EventPublisher | None = None
    late_events: LateEventPublisher | None = None
    tasks: TaskPublisher | None = None
    wake_listeners: list[Callable[[set[str]], None]] = field(default_factory=list)


_sinks = _Sinks()
_lock = threading.Lock()


def connect(
    *,
    events: EventPublisher | None = None,
    late_events: LateEventPublisher | None = None,
    tasks: TaskPublisher | None = None,
) -> None:
    """Where events and ready tasks go (called once, when the app is ready)."""
    with _lock:
        if events is not None:
            _sinks.events = events
        if late_events is not None:
            _sinks.late_events = late_events
        if tasks is not None:
            _sinks.tasks = tasks


def add_wake_listener(listener: Callable[[set[str]], None]) -> None:
    """Call `listener(queues)` after each commit that made work ready in this process."""
    with _lock:
        _sinks.wake_listeners.append(listener)


def remove_wake_listener(listener: Callable[[set[str]], None]) -> None:
    with _lock:
        if listener in _sinks.wake_listeners:
            _sinks.wake_listeners.remove(listener)


@dataclass
class _Box:
    using: str
    queues: set[str] = field(default_factory=set)
    notified: set[str] = field(default_factory=set)  # woken in this process only
    tasks: list[ReadyTask] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


_open = threading.local()


def _box(using: str) -> _Box | None:
    boxes: dict[str, _Box] = getattr(_open, "boxes", {})
    return boxes.get(using)


@contextmanager
def collecting(using: str) -> Iterator[None]:
    """Gather what the block's writes make known and send it as the block ends (inside the
    caller's transaction). A nested block adds to the outer one."""
    if _box(using) is not None:
        yield
        return
    boxes: dict[str, _Box] = getattr(_open, "boxes", None) or {}
    _open.boxes = boxes
    box = boxes[using] = _Box(using)
    try:
        yield
    finally:
        del boxes[using]
    _send(box)


def flush(using: str) -> None:
    """Inside a `collecting` block: send what was gathered so far now (a checkpoint does,
    so its NOTIFY and events travel in its last round trip); later effects still go as the
    block ends."""
    box = _box(using)
    if box is not None:
        _send(box)
        box.queues, box.notified, box.tasks, box.events = set(), set(), [], []


class _Ready(Protocol):
    """A task row, or a task just inserted (durable.store.rows.NewTask)."""

    @property
    def id(self) -> int | None: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def run_at(self) -> datetime: ...


def ready(
    tasks: Iterable[_Ready], using: str, *, wake: bool = True, notified: bool = False
) -> None:
    """Tasks that became claimable (or got a new due time). `wake=False`: tell the task
    publisher only (a step parked until later: a broker publishes it delayed).
    `notified`: the statement that made them sent the NOTIFY itself (durable.store.starts);
    this process's workers are still woken after commit."""
    found = [ReadyTask(int(t.id), t.queue, t.priority, t.run_at) for t in tasks if t.id]
    if not found:
        return
    box = _box(using)
    if box is None:
        box = _Box(using)
        _collect(box, found, wake, notified)
        _send(box)
    else:
        _collect(box, found, wake, notified)


def _collect(box: _Box, tasks: list[ReadyTask], wake: bool, notified: bool) -> None:
    box.tasks += tasks
    if wake:
        (box.notified if notified else box.queues).update(task.queue for task in tasks)


def wake(queues: Iterable[str], using: str) -> None:
    """Work became ready in `queues` (without task rows to publish)."""
    box = _box(using)
    if box is None:
        _send(_Box(using, queues=set(queues)))
    else:
        box.queues.update(queues)


def event(event: dict[str, Any], using: str) -> None:
    """A lifecycle event (durable.signals.lifecycle_event) to publish once committed."""
    box = _box(using)
    if box is None:
        _send(_Box(using, events=[event]))
    else:
        box.events.append(event)


def _send(box: _Box) -> None:
    using = box.using
    if box.queues:
        backend(using).notify(CHANNEL, sorted(box.queues))
    published = False
    if box.events and _sinks.events is not None and connections[using].in_atomic_block:
        published = _sinks.events(box.events, using)
    queues, tasks, events = box.queues | box.notified, list(box.tasks), list(box.events)

    def after_commit() -> None:
        if queues:
            with _lock:
                listeners = list(_sinks.wake_listeners)
            for listener in listeners:
                listener(queues)
        if tasks and _sinks.tasks is not None:
            _sinks.tasks(tasks)
        if events and not published and _sinks.late_events is not None:
            _sinks.late_events(events)
        for sent in events:
            send_now(sent, published=published)

    if queues or tasks or events:
        transaction.on_commit(after_commit, using=using)
