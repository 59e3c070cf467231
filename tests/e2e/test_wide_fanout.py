"""A foreach of 100,000 items on real workers: its branches live in rows, and the join
merges every item's append in item order."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import connection

import durable
from durable.models import FanoutBranch, WorkflowExecution
from tests.e2e.workflows import WideForeach
from tests.support.workers import wait_until

pytestmark = pytest.mark.e2e

ITEMS = 100_000


# Minutes of a CPU when the machine is shared (the suite's own limit is 300 s a test).
@pytest.mark.timeout(900)
def test_a_hundred_thousand_items_join_exactly(workers: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("100,000 steps: PostgreSQL's run only (SQLite's one writer makes it long)")
    if os.environ.get("DURABLE_TEST_WIDE_ONCE") == "skip":
        pytest.skip("CI runs it on the newest combination only (WIDE_ON, scripts/matrix.sh)")
    workers.start(1, concurrency=256)
    wid = durable.start(WideForeach, {"n": ITEMS})

    wait_until(
        lambda: WorkflowExecution.objects.get(workflow_id=wid).is_finished,
        timeout=600,
        message=lambda: f"the foreach did not finish\n{workers.logs()}",
    )

    execution = WorkflowExecution.objects.get(workflow_id=wid)
    assert execution.status == "completed", execution.error
    assert execution.context["out"] == list(range(ITEMS))
    assert execution.fanouts == {}
    assert not FanoutBranch.objects.filter(execution=execution).exists()
