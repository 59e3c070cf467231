"""`BrokerQueue`: the shared half of the Redis, RabbitMQ, NATS and Kafka adapters.

The database stays the source of truth: a `Task` row is the ready work, and a broker
message only says "task 42 of queue q is ready at t". After commit the store hands the
tasks that became ready to `enqueue` (see `durable.engine.adapters.publish_ready`), which
publishes one message per task. `claim` receives up to `limit` messages and claims exactly
those task ids in one statement (`claims.claim_task_ids`); a message whose task is
claimed, finished or gone is a stale hint and is acknowledged away, one whose task is not
due yet is deferred to its due time. The delivery of a claimed task is kept until its
checkpoint (`ack`), its release (`nack`: the store publishes it again) or its retry
(`reschedule`: the store publishes it delayed). Messages the broker loses (a flush, a
restart without persistence) are published again by the worker's reconciler.

Subclasses implement `_receive`, `_publish`, `_settle`, `_requeue` and `_defer`.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.core.checks import CheckMessage, Error
from django.utils import timezone

from durable.queue.base import Capabilities, QueueAdapter
from durable.store import claims
from durable.store.outbox import ReadyTask
from durable.store.records import ClaimedTask

logger = logging.getLogger("durable.queue")

DEFAULT_PREFIX = "durable"
# Tasks due further ahead than this are not published; the reconciler publishes them once
# due. Parked waits without a timeout are due in the year 9999.
DEFAULT_MAX_DELAY = 30 * 24 * 3600.0
DEFAULT_RECONCILE_INTERVAL = 15.0
DEFAULT_RECONCILE_GRACE = 15.0
# Longest single blocking wait on the broker: bounds how late an idle worker notices that
# `wake` was set (a step finished and freed a slot).
DEFAULT_WAIT_TICK = 0.2


@dataclass
class Delivery:
    """One received message: the task it names and the broker's handle to settle it."""

    task_id: int
    queue: str
    handle: Any


class BrokerQueue(QueueAdapter):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_push_wakeup=True, holds_messages=True
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.prefix = str(self.options.get("prefix", DEFAULT_PREFIX))
        self.max_delay = float(self.options.get("max_delay", DEFAULT_MAX_DELAY))
        self.reconcile_interval = float(
            self.options.get("reconcile_interval", DEFAULT_RECONCILE_INTERVAL)
        )
        self.reconcile_grace = float(self.options.get("reconcile_grace", DEFAULT_RECONCILE_GRACE))
        self.wait_tick = float(self.options.get("wait_tick", DEFAULT_WAIT_TICK))
        self._lock = threading.Lock()
        # Received in `wait_for_work`, handed out by the next `claim` of their queue.
        self._buffer: dict[str, list[Delivery]] = {}
        # task id -> the delivery of a claimed task, settled after its checkpoint.
        self._held: dict[int, Delivery] = {}

    # -- the contract --------------------------------------------------------------------

    def enqueue(self, tasks: Sequence[ReadyTask]) -> None:
        horizon = timezone.now() + timedelta(seconds=self.max_delay)
        publishable = [task for task in tasks if task.run_at <= horizon]
        if publishable:
            self._publish(publishable)

    def claim(
        self, queue: str, limit: int, *, worker_id: str, lease_seconds: float
    ) -> list[ClaimedTask]:
        if limit <= 0:
            return []
        with self._lock:
            buffered = self._buffer.pop(queue, [])
        deliveries = buffered[:limit]
        if buffered[limit:]:
            with self._lock:
                self._buffer[queue] = buffered[limit:] + self._buffer.get(queue, [])
        if len(deliveries) < limit:
            if claims.paused_queues([queue], using=self.using):
                self._requeue(deliveries)
                return []
            deliveries += self._receive(queue, limit - len(deliveries), 0.0)
        if not deliveries:
            return []
        try:
            return self._claim_deliveries(queue, deliveries, worker_id, lease_seconds)
        except Exception:
            # The database is unreachable: hand the messages back for a later try.
            self._requeue(deliveries)
            raise

    def _claim_deliveries(
        self, queue: str, deliveries: list[Delivery], worker_id: str, lease_seconds: float
    ) -> list[ClaimedTask]:
        by_id: dict[int, Delivery] = {}
        duplicates: list[Delivery] = []
        for delivery in deliveries:
            if delivery.task_id in by_id:
                duplicates.append(delivery)
            else:
                by_id[delivery.task_id] = delivery
        result = claims.claim_task_ids(
            queue, list(by_id), worker_id=worker_id, lease_seconds=lease_seconds, using=self.using
        )
        if result.paused:
            self._requeue(deliveries)
            return []
        claimed = {claim.task_id for claim in result.claimed}
        with self._lock:
            for task_id in claimed:
                self._held[task_id] = by_id.pop(task_id)
        for task_id, delivery in by_id.items():
            run_at = result.not_due.get(task_id)
            if run_at is not None:
                self._defer(delivery, run_at)
            else:
                self._settle(delivery)  # claimed elsewhere, finished or gone: a stale hint
        for delivery in duplicates:
            self._settle(delivery)
        return result.claimed

    def ack(self, claim: ClaimedTask) -> None:
        self._settle_held(claim)

    def nack(self, claim: ClaimedTask, until: datetime | None = None) -> None:
        # Releasing the row publishes the task again (after commit, delayed to `until`),
        # so the old message is settled rather than requeued: one message per ready task.
        claims.release(claim, using=self.using, until=until)
        self._settle_held(claim)

    def reschedule(self, claim: ClaimedTask, run_at: datetime) -> None:
        # The store already published the retry, delayed to `run_at`.
        self._settle_held(claim)

    def _settle_held(self, claim: ClaimedTask) -> None:
        with self._lock:
            delivery = self._held.pop(claim.task_id, None)
        if delivery is not None:
            try:
                self._settle(delivery)
            except Exception as exc:
                # The broker redelivers it; the claim then finds the task finished.
                logger.warning("could not acknowledge task %s: %s", claim.task_id, exc)

    def wait_for_work(self, queues: Sequence[str], timeout: float, wake: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        # Looked up once per wait (at most a poll interval), not per tick.
        try:
            paused = claims.paused_queues(queues, using=self.using)
        except Exception as exc:
            # The database is away; the worker loop's next claim reports it and backs off.
            logger.warning("could not read paused queues: %s", exc)
            wake.wait(min(timeout, 1.0))
            return
        while not wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._lock:
                buffered = {queue for queue, found in self._buffer.items() if found}
            waiting = [q for q in queues if q not in buffered and q not in paused]
            if not waiting:
                wake.wait(remaining)
                return
            try:
                received = self._receive_any(waiting, min(remaining, self.wait_tick))
            except Exception as exc:
                # The broker is unreachable: idle until the poll timeout, then try again
                # (claims report the error to the worker loop, which backs off).
                logger.warning("waiting on the queue broker failed: %s", exc)
                wake.wait(min(remaining, 1.0))
                return
            if received:
                with self._lock:
                    for delivery in received:
                        self._buffer.setdefault(delivery.queue, []).append(delivery)
                return

    def close(self) -> None:
        with self._lock:
            buffered = [d for found in self._buffer.values() for d in found]
            self._buffer.clear()
        if buffered:
            try:
                self._requeue(buffered)
            except Exception as exc:
                logger.warning("could not hand back %d message(s): %s", len(buffered), exc)

    def missing(self, queue: str, tasks: Sequence[ReadyTask]) -> list[ReadyTask]:
        # A broker that cannot look a message up by task: it lost messages if it holds
        # fewer ready ones than the database has tasks due for a while and unclaimed.
        # Publishing them all again then is safe (duplicates are dropped at claim time).
        depth = self._depth(queue)
        if depth is not None and depth >= len(tasks):
            return []
        return list(tasks)

    def _depth(self, queue: str) -> int | None:
        """How many messages of `queue` the broker holds ready for delivery, if known."""
        return None

    # -- what each broker implements -----------------------------------------------------

    @abstractmethod
    def _publish(self, tasks: Sequence[ReadyTask]) -> None:
        """Publish one message per task, delivered from its `run_at` on."""

    @abstractmethod
    def _receive(self, queue: str, limit: int, timeout: float) -> list[Delivery]:
        """Up to `limit` deliveries of `queue`, waiting up to `timeout` for the first."""

    def _receive_any(self, queues: Sequence[str], timeout: float) -> list[Delivery]:
        """At least one delivery of any of `queues`, or none after `timeout`."""
        each = timeout / len(queues)
        for queue in queues:
            found = self._receive(queue, 1, each)
            if found:
                return found
        return []

    @abstractmethod
    def _settle(self, delivery: Delivery) -> None:
        """Remove the message for good (ack)."""

    @abstractmethod
    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        """Hand unclaimed messages back to the broker for any consumer."""

    @abstractmethod
    def _defer(self, delivery: Delivery, run_at: datetime) -> None:
        """The task is not due until `run_at`: deliver the message again then."""

    # -- checks --------------------------------------------------------------------------

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        messages: list[CheckMessage] = []
        prefix = options.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str) or not prefix or not prefix.replace("-", "_").isidentifier():
            messages.append(
                Error(
                    "DURABLE['QUEUE_OPTIONS']['prefix'] must be a non-empty name of letters, "
                    f"digits, '_' and '-'; got {prefix!r}.",
                    id="durable.E016",
                )
            )
        for key in ("max_delay", "reconcile_interval", "reconcile_grace", "wait_tick"):
            value = options.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                messages.append(
                    Error(
                        f"DURABLE['QUEUE_OPTIONS'][{key!r}] must be a positive number of "
                        f"seconds; got {value!r}.",
                        id="durable.E016",
                    )
                )
        return messages

    @classmethod
    def _check_url(
        cls, options: dict[str, Any], default: str, schemes: tuple[str, ...]
    ) -> list[CheckMessage]:
        url = options.get("url", default)
        if not isinstance(url, str) or not url.startswith(schemes):
            return [
                Error(
                    f"DURABLE['QUEUE_OPTIONS']['url'] must start with {' or '.join(schemes)}; "
                    f"got {url!r}.",
                    id="durable.E016",
                )
            ]
        return []
