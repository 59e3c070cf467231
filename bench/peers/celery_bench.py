"""Celery with the Redis broker: a chain of 3 no-op tasks (see common.py).

Broker: Redis at --broker-url (default redis://127.0.0.1:6379/5; each round flushes that
database number only). No result backend: a chain does not need one, the worker publishes
the next task when the previous one returns. Workers: `celery worker --pool threads
--concurrency C`, so one worker is one process as for Durable (Celery's default prefork
pool would be C+1 processes); Celery's defaults otherwise (prefetch multiplier 4, early
acks). Workflows are started with `chain(first.s(wf), second.s(), third.s()).apply_async()`.

The Core v2 scenarios (core.py): io runs a chain of three tasks that each `time.sleep(0.1)`
on a `--pool threads` worker and on a `--pool gevent` one (gevent patches time.sleep);
fanout is a `chord` of N no-op tasks whose callback checks their results, on the Redis
result backend (the only tasks that keep a result); starts times `apply_async()` and one
`group(...).apply_async()`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# A gevent pool needs the standard library patched before redis, kombu and celery import
# it: the `celery` command does so when it sees `--pool gevent`, app.worker_main does not.
if sys.argv[1:2] == ["worker"] and "gevent" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import redis
from celery import Celery, chain, chord, group
from common import Peer, Recorder, parse_args, run_bench

BROKER_URL = os.environ.get("BENCH_PEER_BROKER_URL", "redis://127.0.0.1:6379/5")
IO_SECONDS = 0.1  # the io scenario's simulated call per step (gevent patches time.sleep)
# The result backend serves the fan-out's chord alone: every other task ignores results.
app = Celery("durable_bench", broker=BROKER_URL, backend=BROKER_URL)
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


def sleep_step(wf: str, step: int) -> str:
    began = time.time()
    time.sleep(IO_SECONDS)
    assert recorder is not None
    recorder.record(wf, step, began)
    return wf


@app.task(name="io_first")
def io_first(wf: str) -> str:
    return sleep_step(wf, 1)


@app.task(name="io_second")
def io_second(wf: str) -> str:
    return sleep_step(wf, 2)


@app.task(name="io_third")
def io_third(wf: str) -> str:
    return sleep_step(wf, 3)


@app.task(name="fanout_item", ignore_result=False)
def fanout_item(i: int) -> int:
    began = time.time()
    assert recorder is not None
    recorder.record(f"f{i}", 1, began)
    return i


@app.task(name="fanout_join")
def fanout_join(results: list[int], n: int) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record("join-ok" if results == list(range(n)) else "join-bad", 1, began)


@app.task(name="noop")
def noop(n: int) -> None:
    return None


class CeleryRedis(Peer):
    start_call = "apply_async()"
    bulk_call = "group().apply_async()"
    fanout_joined = True

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

    def io_pools(self) -> list[tuple[str, list[str]]]:
        return [
            ("celery (threads)", ["--pool", "threads"]),
            ("celery (gevent)", ["--pool", "gevent"]),
        ]

    def enqueue_io(self, wfs: list[str]) -> None:
        for wf in wfs:
            chain(io_first.s(wf), io_second.s(), io_third.s()).apply_async()

    def start_fanout(self, n: int) -> None:
        chord(group(fanout_item.s(i) for i in range(n)))(fanout_join.s(n))

    def start_one(self, i: int) -> None:
        noop.apply_async((i,))

    def start_bulk(self, n: int) -> None:
        group(noop.s(i) for i in range(n)).apply_async()

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
                args.pool,
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
