"""DBOS: a workflow of 3 no-op steps (see common.py).

Workers: one process each that constructs DBOS on the system database, launches it and
registers the queue "bench" with worker_concurrency=C; DBOS dequeues by polling the queue
every --poll-interval seconds (the same interval Durable's workers are given; DBOS's own
default is 1 s). Workflows are started with `DBOSClient.enqueue` from the bench process.
A step's end is recorded when its body returns, before DBOS checkpoints its output.

The Core v2 scenarios (core.py): io is an async workflow of three async steps that each
`await asyncio.sleep(0.1)`; fanout is a workflow (on a queue of its own) that enqueues N
child workflows on the bench queue and gathers their results, DBOS's way to fan out;
starts times `DBOSClient.enqueue()` (DBOS has no bulk start).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from common import Peer, Recorder, parse_args, recreate_database, run_bench
from dbos import DBOS, DBOSClient, EnqueueOptions

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/durable_bench_dbos"
QUEUE = "bench"
PARENT_QUEUE = "bench_parent"
WORKFLOW = "three_noops"
IO_WORKFLOW = "three_sleeps"
ITEM_WORKFLOW = "fanout_item"
FANOUT_WORKFLOW = "fanout"
NOOP_WORKFLOW = "one_noop"
IO_SECONDS = 0.1  # the io scenario's simulated call per step
recorder: Recorder | None = None


@DBOS.step()
def first(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 1, began)


@DBOS.step()
def second(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 2, began)


@DBOS.step()
def third(wf: str) -> None:
    began = time.time()
    assert recorder is not None
    recorder.record(wf, 3, began)


@DBOS.workflow(name=WORKFLOW)
def three_noops(wf: str) -> None:
    first(wf)
    second(wf)
    third(wf)


@DBOS.step()
async def io_step(wf: str, step: int) -> None:
    began = time.time()
    await asyncio.sleep(IO_SECONDS)
    assert recorder is not None
    recorder.record(wf, step, began)


@DBOS.workflow(name=IO_WORKFLOW)
async def three_sleeps(wf: str) -> None:
    for step in range(1, 4):
        await io_step(wf, step)


@DBOS.workflow(name=ITEM_WORKFLOW)
def fanout_item(i: int) -> int:
    began = time.time()
    assert recorder is not None
    recorder.record(f"f{i}", 1, began)
    return i


@DBOS.workflow(name=FANOUT_WORKFLOW)
def fanout(n: int) -> bool:
    """DBOS's fan-out: enqueue n child workflows on the bench queue, gather their results."""
    queue = DBOS.retrieve_queue(QUEUE)
    assert queue is not None
    handles = [queue.enqueue(fanout_item, i) for i in range(n)]
    exact = [handle.get_result() for handle in handles] == list(range(n))
    began = time.time()
    assert recorder is not None
    recorder.record("join-ok" if exact else "join-bad", 1, began)
    return exact


@DBOS.workflow(name=NOOP_WORKFLOW)
def noop(n: int) -> None:
    return None


def launch(url: str, concurrency: int, poll_interval: float) -> None:
    DBOS(config={"name": "durable-bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    # always_update: each round's worker brings its own concurrency.
    DBOS.register_queue(
        QUEUE,
        worker_concurrency=concurrency,
        polling_interval_sec=poll_interval,
        on_conflict="always_update",
    )
    # The fan-out's gathering workflow waits on a queue of its own, not in an item's slot.
    DBOS.register_queue(
        PARENT_QUEUE, polling_interval_sec=poll_interval, on_conflict="always_update"
    )


class Dbos(Peer):
    start_call = "DBOSClient.enqueue()"  # DBOS has no bulk start
    fanout_joined = True

    def __init__(self, args) -> None:  # type: ignore[no-untyped-def]
        super().__init__("dbos", args)
        recreate_database(args.database_url)
        # Launch once here so DBOS creates its system tables and the queue; nothing is
        # enqueued yet, so this process runs nothing.
        launch(args.database_url, args.concurrency, args.poll_interval)
        DBOS.destroy()
        self.client = DBOSClient(system_database_url=args.database_url)

    def reset(self) -> None:
        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            conn.execute("TRUNCATE dbos.workflow_status, dbos.operation_outputs CASCADE")
            conn.execute("VACUUM ANALYZE")

    def enqueue(self, wfs: list[str]) -> None:
        options: EnqueueOptions = {"workflow_name": WORKFLOW, "queue_name": QUEUE}
        for wf in wfs:
            self.client.enqueue({**options, "workflow_id": wf}, wf)

    def enqueue_io(self, wfs: list[str]) -> None:
        options: EnqueueOptions = {"workflow_name": IO_WORKFLOW, "queue_name": QUEUE}
        for wf in wfs:
            self.client.enqueue({**options, "workflow_id": wf}, wf)

    def start_fanout(self, n: int) -> None:
        self.client.enqueue({"workflow_name": FANOUT_WORKFLOW, "queue_name": PARENT_QUEUE}, n)

    def start_one(self, i: int) -> None:
        self.client.enqueue({"workflow_name": NOOP_WORKFLOW, "queue_name": QUEUE}, i)

    def failures(self) -> int | None:
        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM dbos.workflow_status "
                "WHERE status IN ('ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
            ).fetchone()
        return int(row[0]) if row else 0

    def worker_ready(self, log: str) -> bool:
        return "serving" in log

    def close(self) -> None:
        self.client.destroy()


def main(argv: list[str]) -> int:
    global recorder
    args = parse_args(argv, DEFAULT_URL)
    if args.command == "worker":
        recorder = Recorder(args.events_dir)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        launch(args.database_url, args.concurrency, args.poll_interval)
        print("serving", flush=True)
        stop.wait()
        DBOS.destroy(workflow_completion_timeout_sec=5)
        os._exit(0)
    return run_bench(Dbos(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
