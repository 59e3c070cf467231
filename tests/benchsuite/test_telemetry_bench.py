"""bench/telemetry.py's arithmetic and its place in bench/run.py."""

from __future__ import annotations

from bench import report, run, telemetry


def rows(*figures: tuple[int, bool, float]) -> list[dict[str, object]]:
    return [{"workers": w, "telemetry": on, "steps_per_s": s} for w, on, s in figures]


def test_the_summary_compares_medians_per_worker_count() -> None:
    summary = telemetry.summary(
        rows((1, False, 1000), (1, True, 960), (1, False, 1040), (1, True, 1000), (2, False, 1500))
    )
    assert summary == [
        {"workers": 1, "without": 1020, "with": 980, "ratio": 980 / 1020, "rounds": 2}
    ]


def test_telemetry_rounds_are_asked_for_with_throughput() -> None:
    args = run.parse_args(["--only", "throughput", "--telemetry", "--telemetry-repeats", "3"])
    assert (args.telemetry, args.telemetry_repeats, args.scenarios) == (True, 3, ["throughput"])
    assert run.parse_args(["--only", "throughput"]).telemetry is False


def test_the_report_shows_the_ratio() -> None:
    results = {
        "machine": dict.fromkeys(
            ("cpu", "cores", "os", "python", "postgresql", "fsync", "synchronous_commit"), "x"
        )
        | {"load_average": "0.1"},
        "command": "bench/run.py --only throughput --telemetry",
        "seconds": 60,
        "json": "var/x.json",
        "telemetry": rows((1, False, 1000), (1, True, 970)),
    }
    text = report.render(results)
    assert "| 1 | 1 | 1,000 | 970 | 0.970 |" in text
