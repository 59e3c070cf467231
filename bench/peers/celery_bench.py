"""Celery with the Redis broker: a chain of 3 no-op tasks (see common.py).

Broker: Redis at --broker-url (default redis://127.0.0.1:6379/5; each round flushes that
database number only). No result backend: a chain does not need one, the worker publishes
the next task when the previous one returns. Workers: `celery worker --pool threads
--concurrency C`, so one worker is one process as for Durable (Celery's default prefork
pool would be C+1 processes); Celery's defaults otherwise (prefetch multiplier 4, early
acks). Workflows are started with `chain(first.s(wf), second.s(), third.s()).apply_async()`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
from celery import Celery, chain
from common import Peer, Recorder, parse_args, run_bench

BROKER_URL = os.environ.get("BENCH_PEER_BROKER_URL", "redis://127.0.0.1:6379/5")
app = Celery("durable_bench", broker=BROKER_URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
recorder: Recorder | None = None


@app.task(name="first")
def first(wf: str) -> str:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 1, began)
    return wf


@app.task(name="second")
def second(wf: str) -> str:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 2, began)
    return wf


@app.task(name="third")
def third(wf: str) -> str:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 3, began)
    return wf


class CeleryRedis(Peer):
    def __init__(self, args) -> None:  # type: ignore[no-untyped-def]
        super().__init__("celery", args)
        if args.broker_url != BROKER_URL:
            sys.exit("pass the broker URL as BENCH_PEER_BROKER_URL")
        self.redis = redis.Redis.from_url(args.broker_url)

    def reset(self) -> None:
        self.redis.flushdb()  # only the benchmark's database number

    def enqueue(self, wfs: list[str]) -> None:
        for wf in wfs:
            chain(first.s(wf), second.s(), third.s()).apply_async()

    def worker_ready(self, log: str) -> bool:
        return " ready." in log

    def close(self) -> None:
        self.redis.close()


def main(argv: list[str]) -> int:
    global recorder
    args = parse_args(argv, "")
    if args.command == "worker":
        recorder = Recorder(args.events_dir)
        app.worker_main(
            [
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(args.concurrency),
                "--loglevel",
                "INFO",
                "--hostname",
                f"bench{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
        return 0
    return run_bench(CeleryRedis(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
