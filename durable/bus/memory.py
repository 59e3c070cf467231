"""`InMemoryBus`: subscribers in this process only. The default off PostgreSQL, and the
fake to test against."""

from __future__ import annotations

from typing import ClassVar

from durable.bus.base import Capabilities, MessageBus


class InMemoryBus(MessageBus):
    capabilities: ClassVar[Capabilities] = Capabilities(delivers_across_processes=False)

    def _send(self, topic: str, data: str) -> None:
        self._dispatch(topic, data)
