"""A queue adapter module that needs the RabbitMQ client (used by test_checks)."""

from __future__ import annotations

import pika  # noqa: F401

from durable.queue.database import DatabaseQueue


class PikaQueue(DatabaseQueue):
    pass
