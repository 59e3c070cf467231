"""DBOS: a workflow of 3 no-op steps (see common.py).

Workers: one process each that constructs DBOS on the system database, launches it and
registers the queue "bench" with worker_concurrency=C; DBOS dequeues by polling the queue
every --poll-interval seconds (the same interval Durable's workers are given; DBOS's own
default is 1 s). Workflows are started with `DBOSClient.enqueue` from the bench process.
A step's end is recorded when its body returns, before DBOS checkpoints its output.
"""

from __future__ import annotations

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
WORKFLOW = "three_noops"
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


def launch(url: str, concurrency: int, poll_interval: float) -> None:
    DBOS(config={"name": "durable-bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    DBOS.register_queue(QUEUE, worker_concurrency=concurrency, polling_interval_sec=poll_interval)


class Dbos(Peer):
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
