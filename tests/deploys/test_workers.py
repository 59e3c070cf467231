"""Deploys and retries with real worker processes: a worker running new code parks the
execution whose step it removed; a worker with the step restored revives it on start."""

from __future__ import annotations

import subprocess
import sys

import pytest

import durable
from durable.models import ExecutionStatus
from tests.deploys import worker_flows_v1  # noqa: F401  (registers the v1 workflows)
from tests.support.workers import REPO, wait_until, worker_env

V1 = "tests.deploys.worker_flows_v1"
V2 = "tests.deploys.worker_flows_v2"

pytestmark = pytest.mark.django_db(transaction=True)


def status(wid: str) -> str:
    return durable.get_execution(wid).status


def wait_for(wid: str, wanted: str, workers) -> None:
    wait_until(
        lambda: status(wid) == wanted,
        timeout=60,
        message=lambda: f"{wid} is {status(wid)}, not {wanted}\n{workers.logs()}",
    )


def deploy_check(modules: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "durable_deploy_check"],
        cwd=REPO,
        env=worker_env(workflow_modules=modules),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_deploy_removing_a_waiting_step_parks_then_the_restored_step_revives(workers):
    wid = durable.start("deploy_e2e", {})
    workers.start(workflow_modules=V1)
    wait_for(wid, ExecutionStatus.WAITING, workers)
    workers.stop_all()

    assert deploy_check(V1).returncode == 0
    check = deploy_check(V2)
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        f"deploy_e2e\t{wid}\twaiting\tposition=await_pickup\tmissing=await_pickup" in check.stdout
    )

    workers.start(workflow_modules=V2)
    durable.send_event(wid, "picked_up", {"by": "ups"})
    wait_for(wid, ExecutionStatus.NEEDS_ATTENTION, workers)
    workers.stop_all()
    execution = durable.get_execution(wid)
    assert execution.error["missing_steps"] == ["await_pickup"]
    assert "deliver" not in execution.context.get("log", [])

    workers.start(workflow_modules=V1)  # the step is back: revived when the worker starts
    wait_for(wid, ExecutionStatus.COMPLETED, workers)
    assert durable.get_execution(wid).context == {
        "log": ["pack", "deliver"],
        "pickup": {"by": "ups"},
    }


def test_retry_from_the_failed_step_runs_on_a_worker(workers):
    workers.start(workflow_modules=V1)
    wid = durable.start("retry_e2e", {})
    wait_for(wid, ExecutionStatus.FAILED, workers)
    durable.retry(wid)
    wait_for(wid, ExecutionStatus.COMPLETED, workers)
    execution = durable.get_execution(wid)
    assert execution.context == {"amount": 3, "charged": 3}
    assert [(r.step, r.attempt, r.status) for r in execution.steps.order_by("id")] == [
        ("prepare", 1, "completed"),
        ("charge", 1, "failed"),
        ("charge", 2, "completed"),
    ]
