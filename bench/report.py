"""The markdown tables bench/run.py prints at the end, and the done-means checks."""

from __future__ import annotations

from typing import Any

from bench.support import percentiles

LATENCY_MEASURES = (
    ("start_to_first_ms", "start -> first step"),
    ("step_to_next_ms", "step -> next step"),
)


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def ratio(durable: float | None, peer: float | None) -> str:
    return f"{durable / peer:.2f}x" if durable and peer else "-"


def machine_lines(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    return [
        f"Machine: {m['cpu']}, {m['cores']} CPUs, {m['os']}, Python {m['python']}; "
        f"PostgreSQL {m['postgresql']} (fsync={m['fsync']}, "
        f"synchronous_commit={m['synchronous_commit']}); load average at start {m['load_average']}",
        f"Command: {results['command']}",
        f"Took {results['seconds'] / 60:.1f} min; results in {results['json']}",
    ]


def throughput_lines(results: dict[str, Any]) -> list[str]:
    durable = {r["workers"]: r for r in results.get("throughput", [])}
    lines = [
        "| system | workers | workflows | steps/s | workflows/s | Durable/peer (steps/s) "
        "| worker RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in durable.values():
        lines.append(
            f"| Durable | {r['workers']} | {r['workflows']:,} | {fmt(r['steps_per_s'], 0)} "
            f"| {fmt(r['workflows_per_s'], 0)} | | {' + '.join(fmt(x, 0) for x in r['rss_mb'])} |"
        )
    for peer in results.get("peers", []):
        if "error" in peer:
            lines.append(f"| {peer['peer']} | | | error: {peer['error']} | | | |")
            continue
        for r in peer["throughput"]:
            mine = durable.get(r["workers"], {}).get("steps_per_s")
            lines.append(
                f"| {peer['peer']} | {r['workers']} | {r['workflows']:,} "
                f"| {fmt(r['steps_per_s'], 0)} | {fmt(r['workflows_per_s'], 0)} "
                f"| {ratio(mine, r['steps_per_s'])} "
                f"| {' + '.join(fmt(x, 0) for x in r['rss_mb'])} |"
            )
    return lines


def latency_lines(results: dict[str, Any]) -> list[str]:
    lines = [
        "| system | scenario | measure | samples | p50 ms | p95 ms | p99 ms | Durable/peer (p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    durable = results.get("latency", {})
    systems = [("Durable", durable)] + [
        (p["peer"], p.get("latency", {})) for p in results.get("peers", []) if "error" not in p
    ]
    for system, latency in systems:
        for scenario in ("idle", "load"):
            if scenario not in latency:
                continue
            for key, label in LATENCY_MEASURES:
                values = latency[scenario][key]
                p50, p95, p99 = percentiles(values)
                mine = durable.get(scenario, {}).get(key)
                cell = ratio(percentiles(mine)[0], p50) if mine and system != "Durable" else ""
                lines.append(
                    f"| {system} | {scenario} | {label} | {len(values)} | {fmt(p50)} "
                    f"| {fmt(p95)} | {fmt(p99)} | {cell} |"
                )
    return lines


def scale_lines(scale: dict[str, Any]) -> list[str]:
    lines = [
        "| finished executions | claim p50 ms | claim p95 ms | claim p99 ms | empty claim p50 ms "
        "| steps/s | steps/s vs smallest |",
        "|---|---|---|---|---|---|---|",
    ]
    base = scale["levels"][0]["steps_per_s"] if scale["levels"] else None
    for level in scale["levels"]:
        c = level["claim_ms"]
        lines.append(
            f"| {level['finished_executions']:,} | {fmt(c['p50'], 2)} | {fmt(c['p95'], 2)} "
            f"| {fmt(c['p99'], 2)} | {fmt(level['empty_claim_ms_p50'], 2)} "
            f"| {fmt(level['steps_per_s'], 0)} | {ratio(level['steps_per_s'], base)} |"
        )
    return lines


def waiting_lines(w: dict[str, Any]) -> list[str]:
    wake = sorted(w["wakeup_ms"])
    return [
        "| workflows waiting | idle seconds | worker CPU | queries/s | transactions/s "
        "| send_event -> completed (median) |",
        "|---|---|---|---|---|---|",
        f"| {w['waiting']:,} | {fmt(w['idle_seconds'])} | {fmt(w['cpu_percent'], 2)} % "
        f"| {fmt(w['queries_per_s'], 2)} | {fmt(w['transactions_per_s'], 2)} "
        f"| {fmt(wake[len(wake) // 2], 0) if wake else '-'} ms |",
    ]


def memory_lines(memory: dict[str, Any]) -> list[str]:
    samples = memory["samples"]
    lines = ["| completed steps | worker RSS MB | vs first mark |", "|---|---|---|"]
    base = samples[1]["rss_mb"] if len(samples) > 1 else None
    for s in samples:
        lines.append(f"| {s['steps']:,} | {fmt(s['rss_mb'])} | {ratio(s['rss_mb'], base)} |")
    return lines


def adapter_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| adapter | workflows | steps/s | workflows/s | note |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['adapter']} | | | | {r['error']} |")
        else:
            lines.append(
                f"| {r['adapter']} | {r['workflows']:,} | {fmt(r['steps_per_s'], 0)} "
                f"| {fmt(r['workflows_per_s'], 0)} | {r['path']} |"
            )
    return lines


def io_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | C | workflows | done | failed | unfinished | steps/s | bound | % of bound "
        "| Durable/peer (steps/s) | PostgreSQL connections (peak) | worker RSS MB (peak) "
        '| "too many clients" | note |',
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    durable = {r["concurrency"]: r["steps_per_s"] for r in rows if r.get("system") == "Durable"}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | | | | | | | | | | | | | error: {r['error']} |")
            continue
        mine = durable.get(r["concurrency"]) if r["system"] != "Durable" else None
        failed = "-" if r["failed"] is None else f"{r['failed']:,}"
        lines.append(
            f"| {r['system']} | {r['concurrency']:,} | {r['workflows']:,} | {r['completed']:,} "
            f"| {failed} | {r['unfinished']:,} | {fmt(r['steps_per_s'], 0)} "
            f"| {fmt(r['bound'], 0)} | {fmt(r['percent_of_bound'], 0)} % "
            f"| {ratio(mine, r['steps_per_s'])} | {r['peak_connections']} "
            f"| {fmt(r['peak_rss_mb'], 0)} | {'yes' if r['too_many_clients'] else 'no'} "
            f"| {r['stopped'] or ''} |"
        )
    return lines


def fanout_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | items | workers | seconds | items/s | done | join exact "
        "| worker RSS MB (peak) | PostgreSQL connections (peak) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    exact = {True: "yes", False: "NO", None: "-"}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | | | | | error: {r['error']} | | | |")
            continue
        if r["seconds"] is None:
            timing = f"did not finish ({r['done']:,} of {r['items']:,} done) | "
        else:
            timing = f"{fmt(r['seconds'])} | {fmt(r['items_per_s'], 0)}"
        lines.append(
            f"| {r['system']} | {r['items']:,} | {r['workers']} | {timing} | {r['done']:,} "
            f"| {exact[r['exact']]} | {' + '.join(fmt(x, 0) for x in r['peak_rss_mb'])} "
            f"| {' + '.join(str(x) for x in r['peak_connections'])} |"
        )
    return lines


def starts_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | call | calls / inputs | p50 ms | p95 ms | p99 ms | workflows/s | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['system']} | {r.get('call', '')} | | | | | | {r['error']} |")
        elif "samples_ms" in r:
            p50, p95, p99 = percentiles(r["samples_ms"])
            lines.append(
                f"| {r['system']} | {r['call']} | {r['n']:,} | {fmt(p50, 2)} | {fmt(p95, 2)} "
                f"| {fmt(p99, 2)} | {fmt(r['per_s'], 0)} | one at a time |"
            )
        else:
            lines.append(
                f"| {r['system']} | {r['call']} | {r['n']:,} | | | | {fmt(r['per_s'], 0)} "
                f"| one call, {fmt(r['seconds'], 2)} s |"
            )
    return lines


# The fan-out targets: seconds for one 1-worker foreach of this many items.
FANOUT_SECONDS = {10_000: 10.0, 100_000: 120.0}
RSS_LIMIT_MB = 250.0
MAX_WORKER_CONNECTIONS = 10
OVERLOAD_C = 2_000


def io_checks(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    rows = [r for r in rows if "error" not in r]
    for r in (r for r in rows if r["system"] == "Durable"):
        c, at = r["concurrency"], f"io C={r['concurrency']:,}:"
        if c >= OVERLOAD_C:
            done = f"{r['completed']:,} of {r['workflows']:,}"
            out.append(
                (f"{at} every workflow completes ({done})", r["completed"] == r["workflows"])
            )
            out.append((f'{at} no "too many clients" in its log', not r["too_many_clients"]))
            continue
        pct, bound, conns = r["percent_of_bound"], r["bound"], r["peak_connections"]
        out.append((f"{at} >= 80% of the bound ({pct:.0f}% of {bound:,.0f} steps/s)", pct >= 80))
        lost = f"{r['failed']:,} failed, {r['unfinished']:,} unfinished"
        out.append((f"{at} 0 failed workflows ({lost})", r["failed"] == r["unfinished"] == 0))
        limit = MAX_WORKER_CONNECTIONS
        out.append((f"{at} <= {limit} PostgreSQL connections ({conns})", conns <= limit))
        if c == 1_000:
            rss = r["peak_rss_mb"]
            out.append(
                (f"{at} worker RSS <= {RSS_LIMIT_MB:.0f} MB ({rss:.0f})", rss <= RSS_LIMIT_MB)
            )
        peers = [p for p in rows if p["system"] != "Durable" and p["concurrency"] == c]
        if peers:
            best = max(peers, key=lambda p: p["steps_per_s"])
            rate = f"{best['system']} {best['steps_per_s']:,.0f} steps/s"
            out.append(
                (f"{at} ahead of every peer ({rate})", r["steps_per_s"] > best["steps_per_s"])
            )
    return out


def fanout_checks(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for r in rows:
        if r.get("system") != "Durable" or r["workers"] != 1:
            continue
        at, seconds = f"fanout {r['items']:,} items:", r["seconds"]
        if (limit := FANOUT_SECONDS.get(r["items"])) is not None:
            took = "did not finish" if seconds is None else f"{seconds:.1f}s"
            out.append((f"{at} <= {limit:.0f}s ({took})", seconds is not None and seconds <= limit))
        rss = max(r["peak_rss_mb"])
        out.append((f"{at} worker RSS <= {RSS_LIMIT_MB:.0f} MB ({rss:.0f})", rss <= RSS_LIMIT_MB))
        out.append((f"{at} the join's context is exact", r["exact"] is True))
    return out


def starts_checks(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for r in (r for r in rows if r.get("system") == "Durable"):
        if "error" in r:
            out.append((f"{r['call']}: {r['error']}", False))
        elif "samples_ms" in r:
            p50 = percentiles(r["samples_ms"])[0]
            out.append((f"start() p50 <= 1 ms ({p50:.2f})", p50 <= 1))
        else:
            rate = f"{r['per_s']:,.0f} for {r['n']:,} inputs"
            out.append((f"start_many >= 10,000 workflows/s ({rate})", r["per_s"] >= 10_000))
    return out


def checks(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """The issue's done-means targets that this run's data can decide."""
    out: list[tuple[str, bool]] = []
    durable = {r["workers"]: r["steps_per_s"] for r in results.get("throughput", [])}
    peers = {p["peer"]: p for p in results.get("peers", []) if "error" not in p}

    def peer_rate(name: str) -> float | None:
        rows = [r for r in peers.get(name, {}).get("throughput", []) if r["workers"] == 1]
        return rows[0]["steps_per_s"] if rows else None

    if 1 in durable:
        out.append((f"1 worker >= 1,500 steps/s ({durable[1]:,.0f})", durable[1] >= 1500))
        # A Procrastinate job is a step: its jobs/s is its steps/s.
        if (p := peer_rate("procrastinate")) is not None:
            out.append((f"1 worker ahead of Procrastinate's jobs/s ({p:,.0f})", durable[1] > p))
        if (d := peer_rate("dbos")) is not None:
            out.append((f"1 worker over 3x DBOS's steps/s ({3 * d:,.0f})", durable[1] > 3 * d))
    if 2 in durable:
        out.append((f"2 workers >= 2,500 steps/s ({durable[2]:,.0f})", durable[2] >= 2500))
    idle = results.get("latency", {}).get("idle")
    if idle:
        p50, _, p99 = percentiles(idle["start_to_first_ms"])
        out.append((f"idle start -> first step p50 < 5 ms ({p50:.1f})", p50 < 5))
        out.append((f"idle start -> first step p99 < 25 ms ({p99:.1f})", p99 < 25))
    levels = results.get("scale", {}).get("levels", [])
    if len(levels) > 1:
        first, last = levels[0], levels[-1]
        claim = last["claim_ms"]["p50"] / first["claim_ms"]["p50"]
        rate = last["steps_per_s"] / first["steps_per_s"]
        size = f"{last['finished_executions']:,} vs {first['finished_executions']:,}"
        out.append((f"claim p50 with {size} within 10% ({claim:.2f}x)", claim <= 1.1))
        out.append((f"steps/s with {size} within 10% ({rate:.2f}x)", rate >= 0.9))
    if "waiting" in results:
        w = results["waiting"]
        out.append(
            (
                f"{w['waiting']:,} waiting: idle worker < 2% CPU ({w['cpu_percent']:.2f} %)",
                w["cpu_percent"] < 2,
            )
        )
    samples = results.get("memory", {}).get("samples", [])
    if len(samples) > 2:
        a, b = samples[1], samples[-1]
        grow = b["rss_mb"] / a["rss_mb"]
        out.append(
            (
                f"RSS after {b['steps']:,} steps within 10% of after {a['steps']:,} ({grow:.2f}x)",
                grow <= 1.1,
            )
        )
    return [
        *out,
        *io_checks(results.get("io", [])),
        *fanout_checks(results.get("fanout", [])),
        *starts_checks(results.get("starts", [])),
    ]


def render(results: dict[str, Any]) -> str:
    parts = ["## Results", "", *machine_lines(results), ""]
    if results.get("throughput") or results.get("peers"):
        parts += ["### Throughput (workflows of 3 no-op steps)", "", *throughput_lines(results), ""]
    if results.get("telemetry"):
        from bench import telemetry

        parts += [
            "### Telemetry's cost (3 no-op steps; medians of alternating rounds)",
            "",
            *telemetry.lines(results["telemetry"]),
            "",
        ]
    if results.get("latency") or any("latency" in p for p in results.get("peers", [])):
        parts += ["### Latency, 1 worker", "", *latency_lines(results), ""]
    if "scale" in results:
        parts += ["### Scale", "", *scale_lines(results["scale"]), ""]
    if "waiting" in results:
        parts += ["### Waiting workflows, idle worker", "", *waiting_lines(results["waiting"]), ""]
    if "memory" in results:
        parts += ["### Worker memory", "", *memory_lines(results["memory"]), ""]
    if "adapters" in results:
        parts += ["### Queue adapters (1 worker)", "", *adapter_lines(results["adapters"]), ""]
    if "io" in results:
        parts += [
            "### I/O-bound workflows (3 async steps of 100 ms, 1 worker at concurrency C)",
            "",
            *io_lines(results["io"]),
            "",
            "Bound: Durable's is min(C / 0.1 s, the same worker's no-op steps/s); a peer's is "
            "C / 0.1 s (its no-op rate is not measured here).",
            "",
        ]
    if "fanout" in results:
        parts += [
            "### Fan-out (one foreach of N no-op items)",
            "",
            *fanout_lines(results["fanout"]),
            "",
        ]
    if "starts" in results:
        parts += ["### Starts (no worker running)", "", *starts_lines(results["starts"]), ""]
    decided = checks(results)
    if decided:
        parts += ["### Targets", ""]
        parts += [f"- [{'x' if ok else ' '}] {label}" for label, ok in decided]
    return "\n".join(parts)
