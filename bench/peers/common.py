"""What every peer benchmark shares: recording, rounds and figures (stdlib + psycopg only).

A peer module (procrastinate_bench.py, dbos_bench.py, celery_bench.py) runs under
bench/.venv-peers/bin/python, never imports Durable, and is driven by bench/peers/runner.py:

    python bench/peers/<peer>_bench.py bench --out results.json [--workflows N ...]
    python bench/peers/<peer>_bench.py worker --events-dir DIR --concurrency C   (internal)

How a peer is measured, so that its figures mean what Durable's mean:

- Each of the 3 no-op jobs/steps/tasks appends one line to an events file of its own worker
  process: workflow id, step number (1-3), the wall-clock time its body started and the
  time it returned (before the peer defers the next job or checkpoints the step). The
  files are line-buffered, so a line is visible as soon as the step returns.
- Throughput: N workflows are enqueued before any worker runs; steps/s and workflows/s are
  counted from the first step's start to the last step's end, as Durable's are counted
  from the first StepExecution.started_at to the last completed_at.
- start -> first step: from the moment just before the enqueue call (Durable: the
  execution's created_at, stamped inside start()) to the first step's start.
- step -> next step: the next step's start minus the previous step's end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO
from urllib.parse import urlparse

STEPS = 3
VAR = Path(__file__).resolve().parents[2] / "var"


class Recorder:
    """Appends `wf step start end` lines to this process's events file."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = Path(directory) / f"events-{os.getpid()}.txt"
        self._file: TextIO = path.open("a", buffering=1)
        self._lock = threading.Lock()

    def record(self, wf: str, step: int, started: float) -> None:
        line = f"{wf} {step} {started:.6f} {time.time():.6f}\n"
        with self._lock:
            self._file.write(line)


def read_events(directory: Path) -> dict[str, dict[int, tuple[float, float]]]:
    events: dict[str, dict[int, tuple[float, float]]] = {}
    for path in directory.glob("events-*.txt"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:  # a line being written has no newline yet: skip it
                events.setdefault(parts[0], {})[int(parts[1])] = (
                    float(parts[2]),
                    float(parts[3]),
                )
    return events


def done(events: dict[str, dict[int, tuple[float, float]]], prefix: str) -> int:
    return sum(1 for wf, steps in events.items() if wf.startswith(prefix) and STEPS in steps)


def recreate_database(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Peer(ABC):
    """One peer: how to reset its state, run its workers and start its workflows."""

    name: str
    args: argparse.Namespace
    events_dir: Path = field(init=False)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @abstractmethod
    def reset(self) -> None:
        """Empty every queue and table the peer keeps (called before each round)."""

    @abstractmethod
    def enqueue(self, wfs: list[str]) -> None:
        """Start one workflow (chain) per id, as fast as this peer's client allows."""

    @abstractmethod
    def worker_ready(self, log: str) -> bool:
        """Whether a worker's log says it is consuming."""

    @abstractmethod
    def close(self) -> None:
        """Release the client's connections."""

    # -- the Core v2 scenarios (core.py); a peer overrides what it can run ----------------

    # The peer's calls that the starts scenario times, as the table names them; None: the
    # peer has no such call (start_bulk is then not called).
    start_call: ClassVar[str] = "start"
    bulk_call: ClassVar[str | None] = None
    # Whether the fan-out ends in a join that records a "join-ok"/"join-bad" event (Celery's
    # chord, DBOS's gathering workflow); without one it ends with its last item.
    fanout_joined: ClassVar[bool] = False

    def io_pools(self) -> list[tuple[str, list[str]]]:
        """(row label, extra worker arguments) per worker kind the io scenario runs."""
        return [(self.name, [])]

    def enqueue_io(self, wfs: list[str]) -> None:
        """Start one workflow of 3 steps that each sleep 100 ms (async where the peer can)
        per id; each step records `wf step start end` when it returns."""
        raise NotImplementedError

    def start_fanout(self, n: int) -> None:
        """Start n no-op items recording `f<i> 1 start end`, and the join if the peer has one."""
        raise NotImplementedError

    def start_one(self, i: int) -> None:
        """Start one workflow (job) of one no-op step."""
        raise NotImplementedError

    def start_bulk(self, n: int) -> None:
        """Start n such workflows with the peer's bulk call (only when bulk_call is set)."""
        raise NotImplementedError

    def failures(self) -> int | None:
        """Workflows (jobs) the peer itself recorded as failed, where it records that."""
        return None

    # -- workers ---------------------------------------------------------------------------

    def start_workers(
        self,
        count: int,
        label: str,
        concurrency: int | None = None,
        worker_args: list[str] | None = None,
    ) -> None:
        self.events_dir = VAR / "bench-peers" / f"{self.name}-{label}"
        shutil.rmtree(self.events_dir, ignore_errors=True)
        self.events_dir.mkdir(parents=True)
        logs = []
        for n in range(count):
            log = self.events_dir / f"worker-{n}.log"
            with log.open("wb") as out:
                self.workers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            sys.argv[0],
                            "worker",
                            "--events-dir",
                            str(self.events_dir),
                            "--concurrency",
                            str(concurrency or self.args.concurrency),
                            "--database-url",
                            self.args.database_url,
                            "--broker-url",
                            self.args.broker_url,
                            "--poll-interval",
                            str(self.args.poll_interval),
                            *(worker_args or []),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env={
                            **os.environ,
                            "PYTHONUNBUFFERED": "1",
                            "BENCH_PEER_DATABASE_URL": self.args.database_url,
                            "BENCH_PEER_BROKER_URL": self.args.broker_url,
                        },
                    )
                )
            logs.append(log)
        deadline = time.monotonic() + 60
        for log in logs:
            while not self.worker_ready(log.read_text(errors="replace")):
                self.check_alive()
                if time.monotonic() > deadline:
                    sys.exit(f"{self.name} worker not ready after 60s; see {log}")
                time.sleep(0.05)
        time.sleep(0.5)

    def check_alive(self) -> None:
        for process in self.workers:
            if process.poll() is not None:
                sys.exit(f"{self.name} worker {process.pid} exited ({process.returncode})")

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.workers.clear()

    def worker_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.events_dir.glob("worker-*.log"))

    def wait_until(
        self, finished: Callable[[dict[str, Any]], bool], timeout: float, poll: float = 0.2
    ) -> str | None:
        """Poll the events until `finished(events)` (None), or say why waiting stopped: the
        timeout or a worker that exited. For rounds that report what did not finish."""
        deadline = time.monotonic() + timeout
        while not finished(read_events(self.events_dir)):
            for process in self.workers:
                if process.poll() is not None:
                    return f"worker {process.pid} exited ({process.returncode})"
            if time.monotonic() > deadline:
                return f"timeout after {timeout:.0f}s"
            time.sleep(poll)
        return None

    def wait_done(self, prefix: str, n: int, timeout: float, poll: float = 0.1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            events = read_events(self.events_dir)
            if done(events, prefix) >= n:
                return events
            self.check_alive()
            if time.monotonic() > deadline:
                sys.exit(f"{self.name}: only {done(events, prefix)}/{n} done after {timeout}s")
            time.sleep(poll)

    # -- rounds ----------------------------------------------------------------------------

    def throughput(self, count: int) -> dict[str, Any]:
        n = self.args.workflows
        self.reset()
        began = time.perf_counter()
        self.enqueue([f"b{i}" for i in range(n)])
        enqueue_seconds = time.perf_counter() - began
        print(f"[{self.name} {count}w] enqueued {n:,} in {enqueue_seconds:.1f}s", flush=True)
        try:
            self.start_workers(count, f"throughput-{count}")
            events = self.wait_done("b", n, max(300.0, n / 10))
            rss = [vm_rss_kb(p.pid) / 1024 for p in self.workers]
        finally:
            self.stop_workers()
        spans = [t for steps in events.values() for t in steps.values()]
        seconds = max(e for _, e in spans) - min(s for s, _ in spans)
        steps = len(spans)
        print(f"[{self.name} {count}w] {steps:,} steps in {seconds:.2f}s", flush=True)
        return {
            "workers": count,
            "workflows": len(events),
            "steps": steps,
            "seconds": seconds,
            "steps_per_s": steps / seconds,
            "workflows_per_s": len(events) / seconds,
            "enqueue_seconds": enqueue_seconds,
            "rss_mb": rss,
        }

    def latency_idle(self) -> dict[str, list[float]]:
        self.reset()
        starts: dict[str, float] = {}
        try:
            self.start_workers(1, "idle")
            time.sleep(1)
            for i in range(self.args.probes):
                wf = f"p{i}"
                starts[wf] = time.time()
                self.enqueue([wf])
                # A prefix, but p1 is done before p10 exists.
                self.wait_done(wf, 1, 30, poll=0.005)
                time.sleep(self.args.probe_pause)
            events = read_events(self.events_dir)
        finally:
            self.stop_workers()
        return latencies(events, starts)

    def latency_loaded(self) -> dict[str, list[float]]:
        n = self.args.load_workflows
        self.reset()
        self.enqueue([f"b{i}" for i in range(n)])
        starts: dict[str, float] = {}
        try:
            self.start_workers(1, "load")
            i = 0
            while i < self.args.probes and done(read_events(self.events_dir), "b") < n:
                wf = f"p{i}"
                starts[wf] = time.time()
                self.enqueue([wf])
                i += 1
                time.sleep(self.args.probe_interval)
            self.wait_done("b", n, max(300.0, n / 10))
            self.wait_done("p", len(starts), 120)
            events = read_events(self.events_dir)
        finally:
            self.stop_workers()
        return latencies(events, starts)


def latencies(
    events: dict[str, dict[int, tuple[float, float]]], starts: dict[str, float]
) -> dict[str, list[float]]:
    to_first, to_next = [], []
    for wf, began in starts.items():
        steps = events[wf]
        to_first.append(1000 * (steps[1][0] - began))
        for step in range(1, STEPS):
            to_next.append(1000 * (steps[step + 1][0] - steps[step][1]))
    return {"start_to_first_ms": to_first, "step_to_next_ms": to_next}


def parse_args(argv: list[str], default_url: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["bench", "worker"])
    parser.add_argument("--database-url", default=default_url)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--workflows", type=int, default=20_000)
    parser.add_argument("--worker-counts", default="1,2")
    parser.add_argument("--load-workflows", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--probe-pause", type=float, default=0.1)
    parser.add_argument("--probe-interval", type=float, default=0.05)
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--scenarios", default="throughput,latency")
    parser.add_argument("--io-concurrency", default="64,200,1000")
    parser.add_argument("--io-seconds", type=float, default=20.0)
    parser.add_argument("--io-workflows", type=int, default=5_000, help="cap per io round")
    parser.add_argument("--io-timeout", type=float, default=120.0)
    parser.add_argument("--fanout-sizes", default="10000,100000")
    parser.add_argument("--fanout-timeout", type=float, default=180.0)
    parser.add_argument("--starts-calls", type=int, default=2_000)
    parser.add_argument("--starts-bulk", type=int, default=10_000)
    parser.add_argument("--pool", default="threads", help="Celery's worker pool")
    parser.add_argument("--events-dir")
    parser.add_argument("--out")
    return parser.parse_args(argv)


def run_bench(peer: Peer) -> int:
    """The `bench` command: the selected rounds, written as JSON to --out."""
    args = peer.args
    # Unwind on SIGTERM too, so the worker processes started are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {"peer": peer.name, "throughput": [], "latency": {}}
    scenarios = args.scenarios.split(",")
    # Imported here: core.py builds on this module.
    from core import fanout_rounds, io_rounds, starts_rounds

    try:
        if "io" in scenarios:
            results["io"] = io_rounds(peer)
        if "fanout" in scenarios:
            results["fanout"] = fanout_rounds(peer)
        if "starts" in scenarios:
            results["starts"] = starts_rounds(peer)
        if "throughput" in scenarios:
            for count in (int(c) for c in args.worker_counts.split(",") if c):
                results["throughput"].append(peer.throughput(count))
        if "latency" in scenarios:
            results["latency"]["idle"] = peer.latency_idle()
            print(f"[{peer.name}] idle probes done", flush=True)
            results["latency"]["load"] = peer.latency_loaded()
            print(f"[{peer.name}] under-load probes done", flush=True)
    finally:
        peer.close()
    Path(args.out).write_text(json.dumps(results))
    return 0
