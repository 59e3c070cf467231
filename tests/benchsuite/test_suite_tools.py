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
