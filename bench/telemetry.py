"""What telemetry costs a worker: throughput rounds without it, then with it, alternating
in one run (`bench/run.py --only throughput --telemetry`).

Each round is a throughput round (bench/throughput.py: --workflows of three no-op steps,
steps/s measured in the database), but started with `start_many` in chunks of 1,000
(bench/start_batch.py --many): the rounds compare the workers, and a `start()` loop would
take most of the time. "With": the workers and the starter run the OpenTelemetry SDK with a
no-op exporter (DURABLE_OTEL_EXPORTER=none, testproject/telemetry.py), every chunk is
started inside a caller span (so every run has a trace context to parse), and each worker
serves `--metrics-port`, scraped every 5 seconds during the round (the backlog gauges'
queries included). "Without": neither. Each configuration runs --telemetry-repeats times
per worker count, alternating, and the report compares their medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import urllib.request
from typing import Any

from bench import throughput
from bench.support import REPO, empty_tables, settle_tables, worker_env

TELEMETRY_ENV = {"DURABLE_OTEL_EXPORTER": "none"}
METRICS_PORT = 9650
SCRAPE_EVERY = 5.0


class Scraper:
    """Scrapes every worker's /metrics every SCRAPE_EVERY seconds, as Prometheus would."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.stopped = threading.Event()
        self.scrapes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        if self.ports:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        if self.ports:
            self.thread.join(10)

    def _run(self) -> None:
        while not self.stopped.wait(SCRAPE_EVERY):
            for port in self.ports:
                try:
                    url = f"http://127.0.0.1:{port}/metrics"
                    with urllib.request.urlopen(url, timeout=5) as response:
                        response.read()
                    self.scrapes += 1
                except OSError:
                    pass  # a worker still starting or already stopping


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for count in args.worker_counts:
        for repeat in range(args.telemetry_repeats):
            for on in (False, True):
                label = f"{count}-worker {'telemetry' if on else 'plain'} #{repeat + 1}"
                rows.append({**_round(args, count, label, on), "repeat": repeat + 1})
    return rows


def _round(args: argparse.Namespace, count: int, label: str, on: bool) -> dict[str, Any]:
    from bench.run_workflows import ThreeNoOps

    n = args.workflows
    env = TELEMETRY_ENV if on else {}
    empty_tables()
    started = subprocess.run(
        [sys.executable, str(REPO / "bench" / "start_batch.py"), "--many", str(n)],
        cwd=REPO,
        env=worker_env(args.database_url, args.poll_interval, env),
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        sys.exit(f"bench/start_batch.py failed:\n{started.stderr[-2000:]}")
    settle_tables()
    port = METRICS_PORT if on else None
    scraper = Scraper([METRICS_PORT + i for i in range(count)] if on else [])
    with throughput.workers_for(args, env, port) as workers, scraper:
        workers.start(count, label)
        throughput.wait_finished(ThreeNoOps.name, n, workers, max(600.0, n / 5))
    workflows, steps, seconds = throughput.step_span(ThreeNoOps.name)
    print(f"[{label}] {steps:,} steps in {seconds:.2f}s ({steps / seconds:,.0f}/s)", flush=True)
    return {
        "workers": count,
        "telemetry": on,
        "workflows": workflows,
        "steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "scrapes": scraper.scrapes,
    }


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per worker count: the median steps/s without and with telemetry, and their ratio."""
    out = []
    for count in sorted({r["workers"] for r in rows}):
        plain = [r["steps_per_s"] for r in rows if r["workers"] == count and not r["telemetry"]]
        traced = [r["steps_per_s"] for r in rows if r["workers"] == count and r["telemetry"]]
        if plain and traced:
            without, with_ = statistics.median(plain), statistics.median(traced)
            out.append(
                {
                    "workers": count,
                    "without": without,
                    "with": with_,
                    "ratio": with_ / without,
                    "rounds": len(plain),
                }
            )
    return out


def lines(rows: list[dict[str, Any]]) -> list[str]:
    table = [
        "| workers | rounds each | steps/s without | steps/s with tracing + metrics "
        "| with/without |",
        "|---|---|---|---|---|",
    ]
    for s in summary(rows):
        table.append(
            f"| {s['workers']} | {s['rounds']} | {s['without']:,.0f} | {s['with']:,.0f} "
            f"| {s['ratio']:.3f} |"
        )
    table.append("")
    table.append(
        "Each round: "
        + ", ".join(
            f"{r['workers']}w {'on' if r['telemetry'] else 'off'} {r['steps_per_s']:,.0f}"
            for r in rows
        )
    )
    return table
