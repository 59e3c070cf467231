"""The worker's reconciler: make a broker queue hold every ready task again.

With a broker adapter (`capabilities.holds_messages`), the database's `Task` rows are the
ready work and broker messages only announce it. A broker that loses its messages (Redis
flushed, RabbitMQ or NATS restarted without their data) would leave those tasks unclaimed
forever; every `reconcile_interval` seconds each worker looks for tasks of its queues that
have been due for longer than `reconcile_grace` seconds and are still unclaimed, asks the
adapter which of them the broker does not hold, and publishes those again. A duplicate is
harmless: a claim takes the task row once, and later messages for it are dropped.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from datetime import timedelta

from django.utils import timezone

from durable.queue.base import QueueAdapter
from durable.store import claims

logger = logging.getLogger("durable.worker")

# Tasks looked at per queue and pass; the rest wait for the next pass.
BATCH = 1000


class Reconciler:
    def __init__(self, adapter: QueueAdapter, queues: Sequence[str]) -> None:
        self.adapter = adapter
        self.queues = list(queues)
        self.enabled = adapter.capabilities.holds_messages
        self.interval = float(getattr(adapter, "reconcile_interval", 15.0))
        self.grace = float(getattr(adapter, "reconcile_grace", 15.0))
        # Jittered, so workers started together do not all look at once.
        self._next = time.monotonic() + self.interval * random.uniform(0.2, 1.0)

    def maybe_run(self) -> int:
        if not self.enabled or time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self.interval * random.uniform(0.9, 1.1)
        try:
            return self.run()
        except Exception as exc:
            # The broker (or the database) is away: claims report it; try again next time.
            logger.warning("reconciler: could not reconcile the queue broker: %s", exc)
            return 0

    def run(self) -> int:
        """One pass over every queue; returns how many tasks were published again."""
        using = self.adapter.using
        due_before = timezone.now() - timedelta(seconds=self.grace)
        republished = 0
        for queue in self.queues:
            if claims.paused_queues([queue], using=using):
                continue
            stale = claims.unclaimed_due_tasks(
                queue, due_before=due_before, limit=BATCH, using=using
            )
            lost = self.adapter.missing(queue, stale) if stale else []
            if lost:
                logger.warning(
                    "reconciler: the broker did not hold %d ready task(s) of queue %r; "
                    "publishing them again",
                    len(lost),
                    queue,
                )
                self.adapter.enqueue(lost)
                republished += len(lost)
        return republished
