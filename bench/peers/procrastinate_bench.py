"""Procrastinate: a chain of 3 no-op jobs, each deferring the next (see common.py).

Workers: `app.run_worker_async(concurrency=C)` in one process each, async jobs, LISTEN/NOTIFY
on (Procrastinate's default). Workflows are started with `batch_defer` (a batch) or `defer`
(a probe) of the first job from a sync client. Jobs are kept after they succeed, as
Procrastinate's default.

The Core v2 scenarios (core.py): io chains three async jobs that each `await
asyncio.sleep(0.1)`; fanout is one `batch_defer` of N no-op jobs (Procrastinate has no
join: the fan-out is done with its last job); starts times `defer()` and one
`batch_defer()`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import procrastinate
import psycopg
from common import Peer, Recorder, parse_args, recreate_database, run_bench

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/durable_bench_procrastinate"
IO_SECONDS = 0.1  # the io scenario's simulated call per step
recorder: Recorder | None = None
# The worker's app: its jobs defer the next one through it, so it is the one opened.
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=os.environ.get("BENCH_PEER_DATABASE_URL", DEFAULT_URL)
    )
)


@app.task(name="first")
async def first(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 1, began)
    await second.defer_async(wf=wf)


@app.task(name="second")
async def second(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 2, began)
    await third.defer_async(wf=wf)


@app.task(name="third")
async def third(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 3, began)


@app.task(name="io_first")
async def io_first(wf: str) -> None:
    began = time.time()
    await asyncio.sleep(IO_SECONDS)
    assert recorder is not None
    recorder.record(wf, 1, began)
    await io_second.defer_async(wf=wf)


@app.task(name="io_second")
async def io_second(wf: str) -> None:
    began = time.time()
    await asyncio.sleep(IO_SECONDS)
    assert recorder is not None
    recorder.record(wf, 2, began)
    await io_third.defer_async(wf=wf)


@app.task(name="io_third")
async def io_third(wf: str) -> None:
    began = time.time()
    await asyncio.sleep(IO_SECONDS)
    assert recorder is not None
    recorder.record(wf, 3, began)


@app.task(name="fanout_item")
async def fanout_item(i: int) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(f"f{i}", 1, began)


@app.task(name="noop")
async def noop(n: int) -> None:
    return None


class Procrastinate(Peer):
    start_call = "defer()"
    bulk_call = "batch_defer()"

    def __init__(self, args) -> None:  # type: ignore[no-untyped-def]
        super().__init__("procrastinate", args)
        recreate_database(args.database_url)
        # A producer of its own: deferring by task name, as another service would.
        self.app = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=args.database_url)
        )
        self.app.open()
        self.app.schema_manager.apply_schema()

    def reset(self) -> None:
        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            conn.execute("TRUNCATE procrastinate_jobs CASCADE")
            conn.execute("VACUUM ANALYZE procrastinate_jobs")

    def enqueue(self, wfs: list[str]) -> None:
        if len(wfs) == 1:
            self.app.configure_task("first").defer(wf=wfs[0])
            return
        for i in range(0, len(wfs), 1000):
            self.app.configure_task("first").batch_defer(*({"wf": wf} for wf in wfs[i : i + 1000]))

    def enqueue_io(self, wfs: list[str]) -> None:
        for i in range(0, len(wfs), 1000):
            self.app.configure_task("io_first").batch_defer(
                *({"wf": wf} for wf in wfs[i : i + 1000])
            )

    def start_fanout(self, n: int) -> None:
        # No join in Procrastinate: the fan-out ends with its last item (counted by the bench).
        self.app.configure_task("fanout_item").batch_defer(*({"i": i} for i in range(n)))

    def start_one(self, i: int) -> None:
        self.app.configure_task("noop").defer(n=i)

    def start_bulk(self, n: int) -> None:
        self.app.configure_task("noop").batch_defer(*({"n": i} for i in range(n)))

    def failures(self) -> int | None:
        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
            ).fetchone()
        return int(row[0]) if row else 0

    def worker_ready(self, log: str) -> bool:
        return "serving" in log

    def close(self) -> None:
        self.app.close()


async def work(concurrency: int) -> None:
    async with app.open_async() as worker_app:
        print("serving", flush=True)
        await worker_app.run_worker_async(concurrency=concurrency, wait=True)


def main(argv: list[str]) -> int:
    global recorder
    args = parse_args(argv, DEFAULT_URL)
    if args.command == "worker":
        recorder = Recorder(args.events_dir)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(work(args.concurrency))
        return 0
    return run_bench(Procrastinate(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
