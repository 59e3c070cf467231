"""`RedisQueue`: ready-task messages in Redis sorted sets (`pip install durable[redis]`).

Options: `url` (default redis://127.0.0.1:6379/0), `prefix` (default durable),
`visibility_timeout` (default `LEASE_SECONDS`), and those of `BrokerQueue`.

Per queue, three sorted sets whose members are `<task id>:<priority>` (one hash tag per
queue, so they share a Redis Cluster slot):

- `ready`: scored by priority, then due time (highest priority, then oldest, pops first);
- `delayed`: scored by due time; moved to `ready` when due;
- `processing`: claimed messages, scored by their visibility deadline; a consumer that dies
  without settling leaves them there until the deadline passes, then they are ready again.

A claim is one Lua script (promote due and expired messages, pop, mark processing), so two
consumers never receive one message at once. Publishing a task that is already held
replaces its entry: a task is at most one message per set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import redis
from django.core.checks import CheckMessage
from django.utils import timezone

from durable.conf import durable_settings
from durable.queue.base import Capabilities
from durable.queue.broker import BrokerQueue, Delivery
from durable.store.outbox import ReadyTask

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Ready scores: -priority * PRIORITY_STEP + milliseconds since 2020. Doubles hold integers
# exactly up to 2**53, so priorities are clamped to +-PRIORITY_LIMIT.
EPOCH_MS = 1_577_836_800_000
PRIORITY_STEP = 10**12
PRIORITY_LIMIT = 8000

CLAIM_SCRIPT = """
local now, limit, visible = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch, step = tonumber(ARGV[4]), tonumber(ARGV[5])
local function ready(member, at)
  local priority = tonumber(string.match(member, ':(-?%d+)$')) or 0
  redis.call('ZADD', KEYS[1], -priority * step + (at - epoch), member)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[3], member)
  ready(member, now)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[2], due[i])
  ready(due[i], tonumber(due[i + 1]))
end
local popped = redis.call('ZPOPMIN', KEYS[1], limit)
local members = {}
for i = 1, #popped, 2 do
  redis.call('ZADD', KEYS[3], now + visible, popped[i])
  members[#members + 1] = popped[i]
end
return members
"""


class RedisQueue(BrokerQueue):
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_priority=True,
        supports_delay=True,
        supports_pause=True,
        supports_push_wakeup=True,
        supports_concurrent_claims=True,
        holds_messages=True,
    )

    def __init__(self, *, using: str = "default", options: dict[str, Any] | None = None) -> None:
        super().__init__(using=using, options=options)
        self.url = str(self.options.get("url", DEFAULT_URL))
        self.visibility_timeout = float(
            self.options.get("visibility_timeout", durable_settings.LEASE_SECONDS)
        )
        self._client = redis.Redis.from_url(self.url, client_name=f"durable-queue-{os.getpid()}")
        self._claim_script = self._client.register_script(CLAIM_SCRIPT)

    def key(self, queue: str, kind: str) -> str:
        return f"{self.prefix}:{{{queue}}}:{kind}"

    def _publish(self, tasks: Sequence[ReadyTask]) -> None:
        now = timezone.now()
        pipe = self._client.pipeline(transaction=False)
        for task in tasks:
            member = _member(task.task_id, task.priority)
            ready, delayed = self.key(task.queue, "ready"), self.key(task.queue, "delayed")
            if task.run_at <= now:
                pipe.zadd(ready, {member: _ready_score(task.priority, task.run_at)})
                pipe.zrem(delayed, member)
            else:
                pipe.zadd(delayed, {member: _ms(task.run_at)})
                pipe.zrem(ready, member)
        pipe.execute()

    def _receive(self, queue: str, limit: int, timeout: float) -> list[Delivery]:
        members = self._claim_script(
            keys=[
                self.key(queue, "ready"),
                self.key(queue, "delayed"),
                self.key(queue, "processing"),
            ],
            args=[
                _ms(timezone.now()),
                limit,
                int(self.visibility_timeout * 1000),
                EPOCH_MS,
                PRIORITY_STEP,
            ],
        )
        found = [Delivery(_task_id(m), queue, _text(m)) for m in members]
        if found or timeout <= 0:
            return found
        return self._block([queue], timeout)

    def _receive_any(self, queues: Sequence[str], timeout: float) -> list[Delivery]:
        for queue in queues:
            found = self._receive(queue, 1, 0.0)
            if found:
                return found
        return self._block(list(queues), timeout)

    def _block(self, queues: list[str], timeout: float) -> list[Delivery]:
        """Wait for a publish to any ready set, but no longer than the next delayed entry."""
        pipe = self._client.pipeline(transaction=False)
        for queue in queues:
            pipe.zrange(self.key(queue, "delayed"), 0, 0, withscores=True)
            pipe.zrange(self.key(queue, "processing"), 0, 0, withscores=True)
        now = _ms(timezone.now())
        for first in pipe.execute():
            if first:
                timeout = min(timeout, max((first[0][1] - now) / 1000, 0.0))
        if timeout < 0.01:
            return []
        popped = self._client.bzpopmin([self.key(q, "ready") for q in queues], timeout=timeout)
        if popped is None:
            return []
        key, member = str(_text(popped[0])), _text(popped[1])  # type: ignore[arg-type]
        queue = next(q for q in queues if self.key(q, "ready") == key)
        deadline = _ms(timezone.now()) + int(self.visibility_timeout * 1000)
        self._client.zadd(self.key(queue, "processing"), {member: deadline})
        return [Delivery(_task_id(member), queue, member)]

    def _settle(self, delivery: Delivery) -> None:
        self._client.zrem(self.key(delivery.queue, "processing"), delivery.handle)

    def _requeue(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        pipe = self._client.pipeline(transaction=True)
        now = timezone.now()
        for delivery in deliveries:
            priority = int(str(delivery.handle).rpartition(":")[2])
            pipe.zrem(self.key(delivery.queue, "processing"), delivery.handle)
            pipe.zadd(
                self.key(delivery.queue, "ready"), {delivery.handle: _ready_score(priority, now)}
            )
        pipe.execute()

    def _defer(self, delivery: Delivery, run_at: datetime) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.zrem(self.key(delivery.queue, "processing"), delivery.handle)
        pipe.zadd(self.key(delivery.queue, "delayed"), {delivery.handle: _ms(run_at)})
        pipe.execute()

    def missing(self, queue: str, tasks: Sequence[ReadyTask]) -> list[ReadyTask]:
        if not tasks:
            return []
        members = [_member(task.task_id, task.priority) for task in tasks]
        pipe = self._client.pipeline(transaction=False)
        for kind in ("ready", "delayed", "processing"):
            pipe.zmscore(self.key(queue, kind), members)
        found = pipe.execute()
        return [task for i, task in enumerate(tasks) if all(scores[i] is None for scores in found)]

    def close(self) -> None:
        super().close()
        self._client.close()

    @classmethod
    def check(cls, options: dict[str, Any]) -> list[CheckMessage]:
        return [
            *super().check(options),
            *cls._check_url(options, DEFAULT_URL, ("redis://", "rediss://", "unix://")),
        ]


def _member(task_id: int, priority: int) -> str:
    return f"{task_id}:{max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, priority))}"


def _task_id(member: bytes | str) -> int:
    return int(_text(member).partition(":")[0])


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _ready_score(priority: int, run_at: datetime) -> int:
    priority = max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, priority))
    return -priority * PRIORITY_STEP + (_ms(run_at) - EPOCH_MS)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
