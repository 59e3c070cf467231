"""`manage.py durable_graph`."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from durable.testing import run_workflow
from tests.graph.workflows import Review

ROOT = Path(__file__).resolve().parents[2]


def graph_command(*args: str) -> str:
    out = StringIO()
    call_command("durable_graph", *args, stdout=out)
    return out.getvalue()


def test_dot_is_the_default_format() -> None:
    text = graph_command("process_order")
    assert text.startswith("digraph workflow {")
    assert '"check_order_value" -> "flag_for_review" [label="high_value"];' in text


@pytest.mark.parametrize(
    ("fmt", "start"),
    [("mermaid", "flowchart TD"), ("svg", "<svg "), ("dot", "digraph"), ("cytoscape", "{")],
)
def test_every_format(fmt: str, start: str) -> None:
    assert graph_command("book_trip", "--format", fmt).startswith(start)


def test_cytoscape_output_is_json() -> None:
    elements = json.loads(graph_command("book_trip", "--format", "cytoscape"))["elements"]
    assert [n["data"]["id"] for n in elements["nodes"]][1] == "book_flight"


@pytest.mark.django_db
def test_execution_state_and_output_file(tmp_path: Path) -> None:
    execution = run_workflow(Review, {"verdict": "bad"})
    target = tmp_path / "graph.svg"

    assert (
        graph_command(
            "graph_review",
            "--format",
            "svg",
            "--execution",
            execution.workflow_id,
            "--output",
            str(target),
        )
        == ""
    )
    svg = target.read_text(encoding="utf-8")
    assert 'class="node type-step status-failed" data-node-id="reject"' in svg


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_workflow"], "no workflow named 'no_such_workflow'"),
        (["book_trip", "--format", "png"], "unknown format 'png'"),
        (["book_trip", "--execution", "missing"], "no execution with id 'missing'"),
    ],
)
def test_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        graph_command(*args)


def test_errors_exit_non_zero() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "durable_graph", "no_such_workflow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no workflow named 'no_such_workflow'" in result.stderr
