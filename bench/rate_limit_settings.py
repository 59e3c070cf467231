"""The test project's settings plus a `paced` queue rate-limited by BENCH_QUEUE_RATE."""

from __future__ import annotations

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import DURABLE

DURABLE = {
    **DURABLE,
    "QUEUES": {
        **DURABLE["QUEUES"],
        "paced": {"concurrency": 8, "rate_limit": os.environ.get("BENCH_QUEUE_RATE", "600/m")},
    },
}
