from __future__ import annotations

import pytest

import durable
from durable.testing import assert_workflow_completed
from tests.e2e.workflows import ThreeSteps

pytestmark = pytest.mark.e2e


def test_real_worker_runs_three_steps(workers):
    workers.start(1)
    wid = durable.start(ThreeSteps, {})
    execution = assert_workflow_completed(wid, timeout=30)
    assert execution.result == 3
    assert execution.context["ran"] == ["first", "second", "third"]
