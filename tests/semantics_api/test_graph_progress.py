"""`graph.with_execution` carries a running step's `ctx.progress` report."""

from __future__ import annotations

import pytest

import durable
from durable import graph
from tests.semantics_api.workflows import ReportsProgress
from tests.support.workers import wait_until

pytestmark = pytest.mark.e2e


def crunch_node(workflow_id: str) -> dict:
    g = graph.with_execution(ReportsProgress, workflow_id)
    return next(node for node in g["nodes"] if node["id"] == "crunch")


def test_a_running_steps_progress_is_on_its_graph_node(workers, tmp_path):
    release = tmp_path / "release"
    wid = durable.start(ReportsProgress, {"release": str(release)})
    workers.start(1, workflow_modules="tests.semantics_api.workflows")
    wait_until(
        lambda: "progress" in crunch_node(wid),
        timeout=60,
        message=lambda: f"no progress on the node:\n{workers.logs()}",
    )
    node = crunch_node(wid)
    assert node["progress"] == {"done": 3, "total": 10}
    assert node["execution_state"]["status"] == "running"
    assert graph.to_svg(graph.with_execution(ReportsProgress, wid)).count('class="progress"') == 1
    release.touch()
    assert durable.get_result(wid, timeout=60) == "crunched"
    # A finished step shows its state, not a stale report.
    done = crunch_node(wid)
    assert done["execution_state"]["status"] == "completed"
    assert "progress" not in done
