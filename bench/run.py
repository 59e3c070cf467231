"""Durable's benchmark suite: throughput, latency, peers, scale, waiting, memory, adapters,
and the Core v2 scenarios io, fanout and starts.

    .venv/bin/python bench/run.py                   # the default set (about 15 min, see README)
    .venv/bin/python bench/run.py --quick           # the same scenarios, small (about 3 min)
    .venv/bin/python bench/run.py --only throughput,latency,peers
    .venv/bin/python bench/run.py --only adapters --adapters postgres,redis,rabbitmq,nats
    .venv/bin/python bench/run.py --only io,fanout,starts     # each beside the peers

Runs on PostgreSQL only: recreates --database-url (default durable_bench_run) and migrates
it; the peers (Procrastinate, DBOS, Celery+Redis, installed by bench/setup_peers.sh into
bench/.venv-peers) get databases of their own. Prints each scenario's progress, then
markdown tables and the done-means targets the run decided, and writes every figure (raw
latency samples included) to var/bench-results-<UTC time>.json.

Scenario modules: throughput.py (throughput and latency rows), peers/ (the same workloads
on the peers), scale.py, waiting.py, memory.py, adapters.py, io_bound.py, fanout.py,
starts.py (whose peer rounds are peers/core.py); report.py renders the tables.
How each row is measured is in each module's docstring and in the README.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import REPO, VAR

SCENARIOS = (
    "throughput",
    "latency",
    "peers",
    "scale",
    "waiting",
    "memory",
    "adapters",
    "io",
    "fanout",
    "starts",
)
# io, fanout and starts run on demand (--only): on the engine before Core v2, io at C >= 200
# opens about as many connections as the server allows, and a 10k fanout does not finish.
DEFAULT_SCENARIOS = ("throughput", "latency", "peers", "scale", "waiting", "memory")
# Each io C runs the peers' workloads too; a peer at C = 1,000 and 2,000 is bounded by
# CPU, so its rounds are capped by --io-peer-workflows.
# --quick: every scenario, sizes cut so the whole run takes minutes, not a quarter hour.
QUICK = {
    "workflows": 2_000,
    "peer_workflows": 1_000,
    "adapter_workflows": 1_000,
    "load_workflows": 300,
    "probes": 50,
    "peer_probes": 30,
    "scale_sizes": "10k,100k,300k",
    "scale_workflows": 500,
    "scale_claims": 200,
    "waiting_workflows": 10_000,
    "idle_seconds": 10.0,
    "memory_steps": "3000,30000",
    "io_seconds": 5.0,
    "io_noop_workflows": 1_000,
    "io_peer_workflows": 1_000,
    "fanout_sizes": "1k,10k",
    "starts_calls": 500,
    "starts_bulk": 2_000,
}


def count(text: str) -> int:
    """`10k`, `1M`, `5m`, `20000` or `20_000`."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from exc


def counts(text: str) -> list[int]:
    values = [count(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive counts, got {text!r}")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--only",
        help=f"comma-separated scenarios of {','.join(SCENARIOS)} "
        f"(default: {','.join(DEFAULT_SCENARIOS)}, plus adapters when --adapters is given)",
    )
    add(
        "--quick",
        action="store_true",
        help="small sizes: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()),
    )
    add("--peers", default="procrastinate,dbos,celery", help="which peers to measure")
    add(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/durable_bench_run",
        help="PostgreSQL database to (re)create for Durable's rows",
    )
    add("--concurrency", type=int, default=64, help="threads (slots) per worker, every system")
    add(
        "--poll-interval",
        default="0.05",
        help="DURABLE_POLL_INTERVAL of the workers (and DBOS's queue polling interval)",
    )
    add("--workflows", type=count, default=20_000, help="Durable throughput batch")
    add("--worker-counts", type=counts, default=[1, 2], help="throughput rounds")
    add(
        "--telemetry",
        action="store_true",
        help="throughput: also rounds with tracing (SDK, no-op exporter) and --metrics-port, "
        "alternating with rounds without (bench/telemetry.py)",
    )
    add("--telemetry-repeats", type=int, default=2, help="--telemetry: rounds of each, per count")
    add("--probes", type=count, default=200, help="latency probes per scenario")
    add("--load-workflows", type=count, default=1_000, help="batch beside the loaded probes")
    add("--probe-pause", type=float, default=0.1, help="idle: pause after each probe completes")
    add("--probe-interval", type=float, default=0.05, help="under load: seconds between probes")
    add("--peer-workflows", type=count, default=5_000, help="each peer's throughput batch")
    add("--peer-probes", type=count, default=100, help="each peer's latency probes")
    add(
        "--celery-broker",
        default="redis://127.0.0.1:6379/5",
        help="Celery's broker (this Redis database number is flushed)",
    )
    add(
        "--scale-sizes",
        type=counts,
        default=[10_000, 1_000_000, 5_000_000],
        help="finished executions in the tables at each level",
    )
    add("--scale-workflows", type=count, default=3_000, help="steps/s batch at each level")
    add("--scale-claims", type=count, default=800, help="ready tasks whose claims are timed")
    add("--waiting-workflows", type=count, default=100_000)
    add("--idle-seconds", type=float, default=30.0, help="how long the waiting worker idles")
    add("--memory-steps", type=counts, default=[10_000, 200_000], help="RSS read after these")
    add("--adapters", default="", help="postgres,redis,rabbitmq,nats or name=dotted.path")
    add("--adapter-options", action="append", default=[], help="name=JSON (repeatable)")
    add("--adapter-workflows", type=count, default=5_000, help="each adapter's batch")
    add(
        "--io-concurrency",
        type=counts,
        default=[64, 200, 1_000],
        help="io: the worker's concurrency per round (add 2000 for the overload check)",
    )
    add("--io-seconds", type=float, default=20.0, help="io: each run's length at its bound")
    add("--io-noop-workflows", type=count, default=3_000, help="io: the no-op batch per C")
    add("--io-peer-workflows", type=count, default=5_000, help="io: a peer's round at most")
    add("--io-timeout", type=float, default=120.0, help="io: seconds a run may take")
    add("--fanout-sizes", type=counts, default=[10_000, 100_000], help="fanout: items")
    add("--fanout-workers", type=counts, default=[1], help="fanout: Durable worker counts")
    add("--fanout-timeout", type=float, default=180.0, help="fanout: seconds a run may take")
    add("--starts-calls", type=count, default=2_000, help="starts: sequential start() calls")
    add("--starts-bulk", type=count, default=10_000, help="starts: inputs of the bulk start")
    add(
        "--peer-database-prefix",
        default="durable_bench_",
        help="each peer's database is this + the peer's name, beside --database-url",
    )
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(
                    args, key, counts(value) if isinstance(value, str) and "," in value else value
                )
    chosen = (
        args.only.split(",")
        if args.only
        else [*DEFAULT_SCENARIOS, *(["adapters"] if args.adapters else [])]
    )
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"--only: unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if "adapters" in chosen and not args.adapters:
        args.adapters = "postgres"
    peers = [p for p in args.peers.split(",") if p]
    from bench.peers.runner import PEERS

    if bad := sorted(set(peers) - set(PEERS)):
        parser.error(f"--peers: unknown {', '.join(bad)}; choose from {', '.join(PEERS)}")
    args.peers = peers
    args.scenarios = [s for s in SCENARIOS if s in chosen]
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Unwind on SIGTERM too, so the worker processes started are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    began = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = VAR / f"bench-results-{stamp}.json"
    VAR.mkdir(exist_ok=True)

    from bench.support import machine, setup_django

    setup_django(args.database_url)
    from bench import (
        adapters,
        fanout,
        io_bound,
        memory,
        scale,
        starts,
        telemetry,
        throughput,
        waiting,
    )
    from bench.peers import runner
    from bench.report import render

    command = ".venv/bin/python bench/run.py" + (" " + shlex.join(argv) if argv else "")
    results: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "started": stamp,
        "settings": {k: v for k, v in vars(args).items()},
    }
    print(f"command: {command}\nscenarios: {', '.join(args.scenarios)}")
    chosen = args.scenarios
    if "throughput" in chosen and args.telemetry:
        results["telemetry"] = telemetry.run(args)
    elif "throughput" in chosen:
        results["throughput"] = [
            throughput.throughput_round(args, n, f"{n}-worker") for n in args.worker_counts
        ]
    if "latency" in chosen:
        results["latency"] = {
            "idle": throughput.latency_idle(args),
            "load": throughput.latency_loaded(args),
        }
    if "peers" in chosen:
        peer_scenarios = [s for s in ("throughput", "latency") if s in chosen] or [
            "throughput",
            "latency",
        ]
        results["peers"] = runner.run(args, peer_scenarios)
    if "scale" in chosen:
        results["scale"] = scale.run(args)
    if "waiting" in chosen:
        results["waiting"] = waiting.run(
            args.database_url, args.waiting_workflows, args.idle_seconds, wakeups=5
        )
    if "memory" in chosen:
        results["memory"] = memory.run(args)
    if "adapters" in chosen:
        results["adapters"] = adapters.run(args)
    if "io" in chosen:
        results["io"] = io_bound.run(args) + runner.rows(args, "io")
    if "fanout" in chosen:
        results["fanout"] = fanout.run(args) + runner.rows(args, "fanout")
    if "starts" in chosen:
        results["starts"] = starts.run(args) + runner.rows(args, "starts")

    results["seconds"] = time.monotonic() - began
    results["json"] = str(out.relative_to(REPO))
    out.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
