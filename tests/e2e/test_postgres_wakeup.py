"""PostgreSQL: idle workers are woken by LISTEN/NOTIFY, not only by polling."""

from __future__ import annotations

import pytest
from django.db import connection

import durable
from durable.testing import assert_workflow_completed
from tests.e2e.workflows import ThreeSteps

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="LISTEN/NOTIFY wake-up exists only on PostgreSQL (SQLite workers poll)",
    ),
]


def test_idle_worker_picks_up_a_new_workflow_through_listen_notify(workers):
    # A poll interval (and lease) far beyond the wait below: only a NOTIFY wakes it in time.
    (worker,) = workers.start(1, lease_seconds=600, extra_args=("--poll-interval", "300"))
    worker.wait_for_output("LISTEN/NOTIFY wake-up active")

    wid = durable.start(ThreeSteps, {})

    execution = assert_workflow_completed(wid, timeout=60)
    assert execution.result == 3
    assert "probe did not arrive" not in worker.output()
