"""The queue adapter contract.

The database is the source of truth for workflow state and for the set of ready tasks;
an adapter decides how ready work is announced, claimed and handed back. Capabilities are
data, so the engine and the system checks ask an adapter what it can do instead of
testing its class.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.core.checks import CheckMessage

from durable.store.outbox import ReadyTask
from durable.store.records import ClaimedTask


@dataclass(frozen=True)
class Capabilities:
    supports_priority: bool = True
    supports_delay: bool = True
    supports_pause: bool = True
    # Idle workers are woken by a push (NOTIFY, a broker delivery), not only by polling.
    supports_push_wakeup: bool = False
    # Claims are exclusive across processes (SKIP LOCKED, broker acks); false means one
    # database writer lock serialises them.
    supports_concurrent_claims: bool = True
    # Claims are rows of Durable's task table alone (no broker delivery to settle), so a
    # checkpoint may claim the step it queues next for the same worker (see claims.Chain).
    chains_claims: bool = False
    # Ready work travels as messages through an external broker: every ready task must be
    # published (`enqueue`), and the worker's reconciler re-publishes what the broker lost.
    holds_messages: bool = False


class QueueAdapter(ABC):
    """One instance per process (a worker or an API caller), created from settings."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        self.using = using
        self.options = dict(options or {})

    @abstractmethod
    def claim(
        self, queue: str, limit: int, *, worker_id: str, lease_seconds: float
    ) -> list[ClaimedTask]:
        """Fetch up to `limit` ready tasks of `queue`, leased to `worker_id`."""

    def enqueue(self, tasks: Sequence[ReadyTask]) -> None:  # noqa: B027  (optional hook)
        """Called after commit with tasks that became ready (or due later, at `run_at`)."""

    def missing(self, queue: str, tasks: Sequence[ReadyTask]) -> list[ReadyTask]:
        """Which of `tasks` (due, unclaimed for a while) the broker does not hold."""
        return []

    def ack(self, claim: ClaimedTask) -> None:  # noqa: B027
        """The claim's outcome is checkpointed; the adapter may forget it."""

    @abstractmethod
    def nack(self, claim: ClaimedTask, until: datetime | None = None) -> None:
        """Hand the claim back unrun, for any worker to take (no attempt is counted): at
        once, or from `until`."""

    def reschedule(self, claim: ClaimedTask, run_at: datetime) -> None:  # noqa: B027
        """The claim failed and is due again at `run_at` (the store already recorded it)."""

    @abstractmethod
    def wait_for_work(self, queues: Sequence[str], timeout: float, wake: threading.Event) -> None:
        """Block until work may be ready in `queues`, `wake` is set, or `timeout` passes."""

    def close(self) -> None:  # noqa: B027
        """Release connections and threads."""

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        """System-check problems with this adapter's options or environment."""
        return []
