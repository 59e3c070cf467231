"""bench/run.py's own logic: arguments, adapter selection, the targets check, row copying."""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from bench import adapters, report, run


def test_counts_accept_suffixes_and_reject_nonsense() -> None:
    assert run.count("10k") == 10_000
    assert run.count("5M") == 5_000_000
    assert run.count("20_000") == 20_000
    assert run.counts("10k,1M") == [10_000, 1_000_000]
    with pytest.raises(argparse.ArgumentTypeError):
        run.count("lots")
    with pytest.raises(argparse.ArgumentTypeError):
        run.counts("0")


def test_unknown_scenario_or_peer_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "throughput,speed"])
    assert "unknown scenario(s) speed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run.parse_args(["--peers", "temporal"])
    assert "unknown temporal" in capsys.readouterr().err


def test_quick_shrinks_sizes_but_keeps_the_ones_given() -> None:
    args = run.parse_args(["--quick", "--workflows", "777"])
    assert args.workflows == 777
    assert args.scale_sizes == [10_000, 100_000, 300_000]
    assert args.scenarios == list(run.DEFAULT_SCENARIOS)


def test_adapters_scenario_defaults_to_postgres() -> None:
    assert run.parse_args(["--only", "adapters"]).adapters == "postgres"
    assert "adapters" in run.parse_args(["--adapters", "postgres,redis"]).scenarios


def test_adapter_specs() -> None:
    parsed = adapters.parse("postgres,mine=pkg.mod.Queue", ['mine={"url": "x"}'])
    assert parsed == [
        ("postgres", adapters.ADAPTERS["postgres"], {}),
        ("mine", "pkg.mod.Queue", {"url": "x"}),
    ]
    with pytest.raises(SystemExit, match="unknown adapter 'kafkaesque'"):
        adapters.parse("kafkaesque", [])
    with pytest.raises(SystemExit, match="not JSON"):
        adapters.parse("redis", ["redis={url"])


def test_an_adapter_that_cannot_be_imported_is_not_measured() -> None:
    args = argparse.Namespace(
        database_url=os.environ.get("DATABASE_URL", "sqlite:///:memory:"), poll_interval="0.5"
    )
    env = {"DURABLE_QUEUE_ADAPTER": "durable.queue.nowhere.NoQueue", "DURABLE_QUEUE_OPTIONS": "{}"}
    problem = adapters.check(args, env)
    # Depending on whether the settings read DURABLE_QUEUE_ADAPTER, one of two reasons.
    assert problem is not None
    assert "adapter not available" in problem or "ignores DURABLE_QUEUE_ADAPTER" in problem
    postgres = {
        "DURABLE_QUEUE_ADAPTER": adapters.ADAPTERS["postgres"],
        "DURABLE_QUEUE_OPTIONS": "{}",
    }
    if "postgres" in args.database_url:
        assert adapters.check(args, postgres) is None


def results(**extra: Any) -> dict[str, Any]:
    return {
        "throughput": [
            {"workers": 1, "steps_per_s": 1_600.0},
            {"workers": 2, "steps_per_s": 2_400.0},
        ],
        "peers": [
            {"peer": "procrastinate", "throughput": [{"workers": 1, "steps_per_s": 1_700.0}]},
            {"peer": "dbos", "throughput": [{"workers": 1, "steps_per_s": 500.0}]},
            {"peer": "celery", "error": "exit 1"},
        ],
        **extra,
    }


def test_targets_are_decided_from_the_figures() -> None:
    decided = dict(report.checks(results()))
    assert [ok for label, ok in decided.items() if label.startswith("1 worker >=")] == [True]
    assert [ok for label, ok in decided.items() if "Procrastinate" in label] == [False]
    assert [ok for label, ok in decided.items() if "DBOS" in label] == [True]
    assert [ok for label, ok in decided.items() if label.startswith("2 workers")] == [False]
    memory = {
        "samples": [
            {"steps": 0, "rss_mb": 80},
            {"steps": 10_000, "rss_mb": 100},
            {"steps": 200_000, "rss_mb": 111},
        ]
    }
    assert dict(report.checks({"memory": memory})) == {
        "RSS after 200,000 steps within 10% of after 10,000 (1.11x)": False
    }


@pytest.mark.django_db(transaction=True)
def test_clone_copies_an_execution_with_its_rows() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("bench/clone.py runs in the PostgreSQL test run (DATABASE_URL=postgres://...)")
    import durable
    from bench.clone import clone_execution
    from bench.run_workflows import ThreeNoOps
    from durable.models import Task, WorkflowExecution

    wid = durable.start(ThreeNoOps, {"n": 1})
    template = WorkflowExecution.objects.get(workflow_id=wid)
    clone_execution(template.pk, 3, "copy-", first=5)
    copies = WorkflowExecution.objects.filter(workflow_id__startswith="copy-")
    assert sorted(copies.values_list("workflow_id", flat=True)) == ["copy-5", "copy-6", "copy-7"]
    for copy in copies:
        assert copy.status == template.status
        assert copy.input == {"n": 1}
        assert copy.created_at < template.created_at
        assert Task.objects.filter(execution=copy).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_large_clone_rebuilds_every_index_it_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("bench/clone.py runs in the PostgreSQL test run (DATABASE_URL=postgres://...)")
    import durable
    from bench import clone
    from bench.run_workflows import ThreeNoOps
    from durable.models import WorkflowExecution

    def indexes() -> set[tuple[str, str]]:
        # Names and tables: PostgreSQL renders a rebuilt partial index's predicate anew.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()"
            )
            return set(cursor.fetchall())

    before = indexes()
    monkeypatch.setattr(clone, "REBUILD_FROM", 1)
    wid = durable.start(ThreeNoOps, {"n": 1})
    clone.clone_execution(WorkflowExecution.objects.get(workflow_id=wid).pk, 2, "big-")
    assert indexes() == before
    assert WorkflowExecution.objects.filter(workflow_id__startswith="big-").count() == 2


def test_core_scenarios_parse_with_their_sizes() -> None:
    args = run.parse_args(
        ["--only", "io,fanout,starts", "--io-concurrency", "64,2000", "--fanout-sizes", "10k"]
    )
    assert args.scenarios == ["io", "fanout", "starts"]
    assert args.io_concurrency == [64, 2_000]
    assert args.fanout_sizes == [10_000]
    assert args.starts_bulk == 10_000
    quick = run.parse_args(["--quick", "--only", "fanout"])
    assert quick.fanout_sizes == [1_000, 10_000]
    # On demand only: the default set must not run io at C >= 200 on any engine unasked.
    assert not {"io", "fanout", "starts"} & set(run.parse_args([]).scenarios)


def core_results() -> dict[str, Any]:
    io_row = {
        "concurrency": 64,
        "workflows": 4_000,
        "completed": 4_000,
        "failed": 0,
        "unfinished": 0,
        "bound": 640.0,
        "peak_rss_mb": 90.0,
        "too_many_clients": False,
        "stopped": None,
    }
    return {
        "io": [
            {
                **io_row,
                "system": "Durable",
                "steps_per_s": 600.0,
                "percent_of_bound": 93.75,
                "peak_connections": 6,
            },
            {
                **io_row,
                "system": "celery (gevent)",
                "steps_per_s": 580.0,
                "percent_of_bound": 90.6,
                "peak_connections": 0,
            },
            {
                **io_row,
                "system": "Durable",
                "concurrency": 2_000,
                "completed": 3_990,
                "unfinished": 10,
                "steps_per_s": 2_000.0,
                "percent_of_bound": 70.0,
                "peak_connections": 8,
                "too_many_clients": True,
                "stopped": "timeout after 120s",
            },
            {"system": "dbos", "error": "exit 1: boom"},
        ],
        "fanout": [
            {
                "system": "Durable",
                "items": 10_000,
                "workers": 1,
                "seconds": None,
                "items_per_s": None,
                "done": 4_321,
                "exact": None,
                "peak_rss_mb": [300.0],
                "peak_connections": [65],
                "stopped": "timeout after 180s",
            },
            {
                "system": "celery",
                "items": 10_000,
                "workers": 1,
                "seconds": 8.0,
                "items_per_s": 1_250.0,
                "done": 10_000,
                "exact": True,
                "peak_rss_mb": [60.0],
                "peak_connections": [0],
                "stopped": None,
            },
        ],
        "starts": [
            {
                "system": "Durable",
                "call": "start()",
                "n": 3,
                "samples_ms": [0.5, 0.8, 2.0],
                "per_s": 909.0,
            },
            {
                "system": "Durable",
                "call": "start_many()",
                "n": 10_000,
                "error": "durable.start_many is not available on this build",
            },
            {
                "system": "celery",
                "call": "group().apply_async()",
                "n": 10_000,
                "seconds": 2.0,
                "per_s": 5_000.0,
            },
        ],
    }


def test_core_scenarios_render_side_by_side_and_decide_their_targets() -> None:
    results = core_results()
    text = report.render(
        {
            **results,
            "machine": report_machine(),
            "command": "bench/run.py",
            "seconds": 60,
            "json": "var/x.json",
        }
    )
    assert "| celery (gevent) | 64 | 4,000 | 4,000 | 0 | 0 | 580 | 640 | 91 % | 1.03x |" in text
    assert "| dbos | | | | | | | | | | | | | error: exit 1: boom |" in text
    assert "did not finish (4,321 of 10,000 done)" in text
    assert "| Durable | start() | 3 | 0.80 |" in text
    decided = dict(report.checks(results))
    assert decided["io C=64: >= 80% of the bound (94% of 640 steps/s)"] is True
    assert decided["io C=64: <= 10 PostgreSQL connections (6)"] is True
    assert decided["io C=64: ahead of every peer (celery (gevent) 580 steps/s)"] is True
    assert decided["io C=2,000: every workflow completes (3,990 of 4,000)"] is False
    assert decided['io C=2,000: no "too many clients" in its log'] is False
    assert decided["fanout 10,000 items: <= 10s (did not finish)"] is False
    assert decided["fanout 10,000 items: the join's context is exact"] is False
    assert decided["start() p50 <= 1 ms (0.80)"] is True
    assert decided["start_many(): durable.start_many is not available on this build"] is False


def report_machine() -> dict[str, str]:
    keys = ("cpu", "cores", "os", "python", "postgresql", "fsync", "synchronous_commit")
    return {**dict.fromkeys(keys, "x"), "load_average": "0 0 0"}


def test_the_sampler_counts_the_backends_of_the_sampled_process() -> None:
    import time
    from urllib.parse import urlparse

    from bench.peers.sampling import Sampler, server_ports

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...)")
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    # This process holds one connection of its own to the server: the sampler finds it.
    with psycopg.connect(admin) as conn:
        conn.execute("SELECT 1")
        # Earlier tests may have left this process other connections (Django's, a bus's).
        held = len(server_ports(os.getpid(), urlparse(url).port or 5432))
        assert held >= 1
        sampler = Sampler(os.getpid(), url).start()
        time.sleep(0.35)
        sampler.stop()
    assert sampler.samples >= 2
    # Every backend is this process's: those it held and the sampler's own (in the bench
    # the sampler runs in the driver, not in the worker it samples).
    assert sampler.peak_connections == held + 1
    assert sampler.peak_rss_mb > 0


def test_peer_rows_of_a_core_scenario_keep_a_failed_peer_as_an_error_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.peers import runner

    def fake_run(args: argparse.Namespace, scenarios: list[str]) -> list[dict[str, Any]]:
        assert scenarios == ["fanout"]
        return [
            {"peer": "celery", "fanout": [{"system": "celery", "items": 10}]},
            {"peer": "dbos", "error": "exit 1: boom"},
        ]

    monkeypatch.setattr(runner, "run", fake_run)
    args = argparse.Namespace(database_url="postgres://h/db_x", peer_database_prefix="bench_h_")
    assert runner.rows(args, "fanout") == [
        {"system": "celery", "items": 10},
        {"system": "dbos", "error": "exit 1: boom"},
    ]
    assert runner.database_url(args, "dbos") == "postgres://h/bench_h_dbos"
