"""Runs each peer's benchmark as a subprocess of bench/.venv-peers/bin/python.

The peers are not project dependencies: bench/setup_peers.sh installs them into
bench/.venv-peers. Each peer runs on a database of its own (<--peer-database-prefix><peer>,
by default durable_bench_<peer>, recreated by the peer module); Celery uses Redis
127.0.0.1:6379 database 5 only (--celery-broker; flushed per round).
A missing virtualenv or a failing peer gives an error row, not a failed suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from typing import Any

from bench.support import REPO, VAR

PEERS_PYTHON = REPO / "bench" / ".venv-peers" / "bin" / "python"
PEERS = ("procrastinate", "dbos", "celery")


def database_url(args: argparse.Namespace, peer: str) -> str:
    return args.database_url.rsplit("/", 1)[0] + f"/{args.peer_database_prefix}{peer}"


def run_peer(args: argparse.Namespace, peer: str, scenarios: list[str]) -> dict[str, Any]:
    if not PEERS_PYTHON.exists():
        return {"peer": peer, "error": "bench/.venv-peers missing: run bench/setup_peers.sh"}
    out = VAR / f"bench-peer-{peer}.json"
    out.unlink(missing_ok=True)
    log = VAR / f"bench-peer-{peer}.log"
    command = [
        str(PEERS_PYTHON),
        str(REPO / "bench" / "peers" / f"{peer}_bench.py"),
        "bench",
        "--out",
        str(out),
        "--database-url",
        database_url(args, peer),
        "--broker-url",
        args.celery_broker,
        "--workflows",
        str(args.peer_workflows),
        "--worker-counts",
        ",".join(str(n) for n in args.worker_counts),
        "--load-workflows",
        str(args.load_workflows),
        "--concurrency",
        str(args.concurrency),
        "--probes",
        str(args.peer_probes),
        "--probe-pause",
        str(args.probe_pause),
        "--probe-interval",
        str(args.probe_interval),
        "--poll-interval",
        str(args.poll_interval),
        "--scenarios",
        ",".join(scenarios),
        "--io-concurrency",
        ",".join(str(c) for c in args.io_concurrency),
        "--io-seconds",
        str(args.io_seconds),
        "--io-workflows",
        str(args.io_peer_workflows),
        "--io-timeout",
        str(args.io_timeout),
        "--fanout-sizes",
        ",".join(str(n) for n in args.fanout_sizes),
        "--fanout-timeout",
        str(args.fanout_timeout),
        "--starts-calls",
        str(args.starts_calls),
        "--starts-bulk",
        str(args.starts_bulk),
    ]
    print(f"[peers] {peer}: {' '.join(command[1:3])} ... (log: {log})", flush=True)
    with log.open("wb") as output:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
        env["BENCH_PEER_BROKER_URL"] = args.celery_broker
        done = subprocess.run(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return {"peer": peer, "error": f"exit {done.returncode}: {tail[0][:200]} (see {log})"}
    result: dict[str, Any] = json.loads(out.read_text())
    for row in result.get("throughput", []):
        print(f"[peers] {peer} {row['workers']}w: {row['steps_per_s']:,.0f} steps/s", flush=True)
    return result


def run(args: argparse.Namespace, scenarios: list[str]) -> list[dict[str, Any]]:
    return [run_peer(args, peer, scenarios) for peer in args.peers]


def rows(args: argparse.Namespace, scenario: str) -> list[dict[str, Any]]:
    """The peers' rows of one Core v2 scenario (io, fanout, starts), beside Durable's; a
    peer that failed gives one row with its error."""
    out: list[dict[str, Any]] = []
    for result in run(args, [scenario]):
        if "error" in result:
            out.append({"system": result["peer"], "error": result["error"]})
        else:
            out.extend(result.get(scenario, []))
    return out
