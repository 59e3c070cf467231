"""The headline: workers SIGKILLed at random while hundreds of workflows run lose nothing
and checkpoint nothing twice. `bench/soak.py` runs the same scenario for longer.

The seed is printed (pytest shows it when the test fails); DURABLE_CHAOS_SEED replays it.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.crash.chaos import Chaos

pytestmark = pytest.mark.e2e

# About 1,250 step runs: well under a minute on SQLite and on PostgreSQL on two cores.
WORKFLOWS = 300
WORKERS = 3
LEASE_SECONDS = 2
CHAOS_SECONDS = 30


def test_randomly_sigkilled_workers_finish_every_workflow_and_checkpoint_each_step_once(
    workers, tmp_path
):
    seed = int(os.environ.get("DURABLE_CHAOS_SEED") or random.randrange(1_000_000))
    print(f"chaos seed: {seed} (rerun with DURABLE_CHAOS_SEED={seed})")
    chaos = Chaos(workers, journal=tmp_path / "journal", seed=seed, lease_seconds=LEASE_SECONDS)
    chaos.start_workers(WORKERS)
    chaos.start_workflows(WORKFLOWS)

    chaos.rampage(CHAOS_SECONDS, until=lambda: not chaos.unfinished())
    finished = chaos.wait_finished(timeout=240)
    report = chaos.check()

    print(report.describe())
    assert finished, f"{chaos.unfinished()} workflows unfinished\n{report.describe()}"
    assert report.kills > 0, report.describe()
    # The monkey must have hit steps in the middle, or the test proves nothing.
    assert report.interrupted > 0, report.describe()
    assert not report.problems, report.describe()
