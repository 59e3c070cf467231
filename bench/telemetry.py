"""What telemetry costs a worker: throughput rounds without it, then with it, alternating
in one run (`bench/run.py --only throughput --telemetry`).

"With": the workers and the starter run the OpenTelemetry SDK with a no-op exporter
(DURABLE_OTEL_EXPORTER=none, testproject/telemetry.py), each `durable.start()` happens
inside a caller span (so every step parses the run's trace context), and each worker serves
`--metrics-port`, scraped every 5 seconds during the round (the backlog gauges' queries
included). "Without": neither. Each configuration runs --telemetry-repeats times per worker
count, alternating, and the report compares their medians.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import urllib.request
from typing import Any

from bench import throughput

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
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
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
                if on:
                    ports = [METRICS_PORT + n for n in range(count)]
                    with Scraper(ports) as scraper:
                        row = throughput.throughput_round(
                            args, count, label, env=TELEMETRY_ENV, metrics_port=METRICS_PORT
                        )
                    row["scrapes"] = scraper.scrapes
                else:
                    row = throughput.throughput_round(args, count, label)
                rows.append({**row, "telemetry": on, "repeat": repeat + 1})
    return rows


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
