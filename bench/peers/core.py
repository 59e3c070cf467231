"""The Core v2 scenarios (io, fanout, starts) on a peer, measured as Durable's are.

Run by common.run_bench when --scenarios names them; the peer supplies the workloads
(Peer.enqueue_io, start_fanout, start_one, start_bulk), this module the rounds:

- io: for each C of --io-concurrency and each worker kind of the peer (Celery: the threads
  and the gevent pool), min(C / 0.1 s x --io-seconds / 3, --io-workflows) workflows of
  three 100 ms steps are enqueued, then ONE worker at concurrency C runs them. steps/s
  counts the recorded steps from the first start to the last end. The worker's peak
  PostgreSQL connections and RSS are sampled every 100 ms (sampling.py). After
  --io-timeout seconds what did not finish is reported.
- fanout: for each N of --fanout-sizes, with one worker already running, N no-op items
  (and the peer's join, if it has one) are started; the time runs from just before the
  first enqueue to the join's end (or the last item's end), --fanout-timeout at most.
- starts: --starts-calls single starts in a row, each timed (no worker running), then one
  bulk start of --starts-bulk where the peer has a bulk call.
"""

from __future__ import annotations

import math
import time
from typing import Any

from common import Peer, done, read_events, vm_rss_kb
from sampling import Sampler, log_says_too_many_clients

STEP_SECONDS = 0.1
STEPS = 3


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def io_round(peer: Peer, concurrency: int, system: str, worker_args: list[str]) -> dict[str, Any]:
    args = peer.args
    wanted = math.ceil(concurrency / STEP_SECONDS * args.io_seconds / STEPS)
    n = min(wanted, args.io_workflows)
    peer.reset()
    peer.enqueue_io([f"i{i}" for i in range(n)])
    label = f"io-{concurrency}-{system.replace(' ', '').replace('(', '-').replace(')', '')}"
    try:
        peer.start_workers(1, label, concurrency, worker_args)
        sampler = Sampler(peer.workers[0].pid, args.database_url).start()
        try:
            stopped = peer.wait_until(lambda ev: done(ev, "i") >= n, args.io_timeout)
        finally:
            sampler.stop()
        too_many = log_says_too_many_clients(peer.worker_logs())
        failed = peer.failures()
    finally:
        peer.stop_workers()
    events = read_events(peer.events_dir)
    spans = [t for wf, steps in events.items() if wf.startswith("i") for t in steps.values()]
    seconds = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    completed = done(events, "i")
    bound = concurrency / STEP_SECONDS
    row = {
        "system": system,
        "concurrency": concurrency,
        "workflows": n,
        "completed": completed,
        "failed": failed,
        "unfinished": n - completed - (failed or 0),
        "steps": len(spans),
        "seconds": seconds,
        "steps_per_s": len(spans) / seconds if seconds else 0.0,
        # The peers' own no-op rate is not measured here: their bound is C / 0.1 s alone.
        "bound": bound,
        "percent_of_bound": 100 * len(spans) / seconds / bound if seconds else 0.0,
        "peak_connections": sampler.peak_connections,
        "peak_rss_mb": sampler.peak_rss_mb,
        "too_many_clients": too_many,
        "stopped": stopped,
    }
    print(
        f"[{system} io C={concurrency}] {completed:,}/{n:,} done: "
        f"{row['steps_per_s']:,.0f} steps/s, {row['peak_connections']} connections, "
        f"{row['peak_rss_mb']:.0f} MB" + (f"; {stopped}" if stopped else ""),
        flush=True,
    )
    return row


def io_rounds(peer: Peer) -> list[dict[str, Any]]:
    return [
        io_round(peer, concurrency, system, worker_args)
        for concurrency in ints(peer.args.io_concurrency)
        for system, worker_args in peer.io_pools()
    ]


def items_done(events: dict[str, Any]) -> int:
    return sum(1 for wf in events if wf.startswith("f"))


def joined(events: dict[str, Any]) -> bool:
    return "join-ok" in events or "join-bad" in events


def fanout_round(peer: Peer, n: int) -> dict[str, Any]:
    args = peer.args
    peer.reset()
    try:
        peer.start_workers(1, f"fanout-{n}")
        sampler = Sampler(peer.workers[0].pid, args.database_url).start()
        try:
            began = time.time()
            peer.start_fanout(n)
            enqueued = time.time() - began
            stopped = peer.wait_until(
                joined if peer.fanout_joined else lambda ev: items_done(ev) >= n,
                args.fanout_timeout,
                poll=0.5,  # the events of 100k items take a while to read
            )
        finally:
            sampler.stop()
        rss = [vm_rss_kb(p.pid) / 1024 for p in peer.workers]
    finally:
        peer.stop_workers()
    events = read_events(peer.events_dir)
    row: dict[str, Any] = {
        "system": peer.name,
        "items": n,
        "workers": 1,
        "done": items_done(events),
        "enqueue_seconds": enqueued,
        "peak_rss_mb": [max(sampler.peak_rss_mb, *rss)],
        "peak_connections": [sampler.peak_connections],
        "stopped": stopped,
        "seconds": None,
        "items_per_s": None,
        # Only a join can be checked for its merged results (Procrastinate has none).
        "exact": None,
    }
    if not stopped:
        if peer.fanout_joined:
            join = "join-ok" if "join-ok" in events else "join-bad"
            end = events[join][1][1]
            row["exact"] = join == "join-ok"
        else:
            end = max(steps[1][1] for wf, steps in events.items() if wf.startswith("f"))
        row.update(seconds=end - began, items_per_s=n / (end - began))
    print(
        f"[{peer.name} fanout {n:,}] "
        + (
            f"{row['seconds']:.1f}s ({row['items_per_s']:,.0f} items/s)"
            if row["seconds"]
            else f"did not finish ({row['done']:,} of {n:,} done): {stopped}"
        ),
        flush=True,
    )
    return row


def fanout_rounds(peer: Peer) -> list[dict[str, Any]]:
    return [fanout_round(peer, n) for n in ints(peer.args.fanout_sizes)]


def starts_rounds(peer: Peer) -> list[dict[str, Any]]:
    args = peer.args
    peer.reset()
    samples = []
    for i in range(args.starts_calls):
        began = time.perf_counter()
        peer.start_one(i)
        samples.append(1000 * (time.perf_counter() - began))
    rows: list[dict[str, Any]] = [
        {
            "system": peer.name,
            "call": peer.start_call,
            "n": args.starts_calls,
            "samples_ms": samples,
            "per_s": args.starts_calls / (sum(samples) / 1000),
        }
    ]
    n = args.starts_bulk
    if peer.bulk_call is None:
        rows.append({"system": peer.name, "call": "bulk", "n": n, "error": "no bulk start call"})
        return rows
    peer.reset()
    began = time.perf_counter()
    peer.start_bulk(n)
    seconds = time.perf_counter() - began
    rows.append(
        {
            "system": peer.name,
            "call": peer.bulk_call,
            "n": n,
            "seconds": seconds,
            "per_s": n / seconds,
        }
    )
    print(f"[{peer.name} starts] {peer.bulk_call} x{n:,}: {n / seconds:,.0f}/s", flush=True)
    return rows
