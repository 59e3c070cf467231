"""Long-lived runs on real worker processes: a perpetual loop continuing as new, and
`ctx.patched` across a simulated deploy, checked first by `durable_deploy_check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import durable
from durable.models import StepCode, WorkflowExecution
from tests.semantics import longlived  # registers the code as first deployed
from tests.semantics.test_timeouts import entries
from tests.support.workers import REPO, WorkerPool, wait_until, worker_env

pytestmark = pytest.mark.e2e

V1 = "tests.semantics.workflows,tests.semantics.longlived"
V2 = "tests.semantics.workflows,tests.semantics.longlived_v2"
V3 = "tests.semantics.workflows,tests.semantics.longlived_v3"


def status(wid: str) -> str:
    return str(WorkflowExecution.objects.get(workflow_id=wid).status)


def wait_for(wid: str, wanted: str, workers: WorkerPool) -> None:
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


def test_perpetual_loop_continues_as_new_three_times_with_a_history_that_does_not_grow(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    workers.start(1, workflow_modules=V1)
    first = durable.start(longlived.Poller, {"round": 0, "rounds": 3, "journal": str(journal)})

    def last() -> WorkflowExecution:
        run = WorkflowExecution.objects.get(workflow_id=first)
        while (successor := run.continuations.first()) is not None:
            run = successor
        return run

    wait_until(
        lambda: last().status == "completed",
        timeout=60,
        message=lambda: f"the chain ends at {last()}\n{workers.logs()}",
    )

    runs = list(WorkflowExecution.objects.filter(workflow_name="semantics_poller").order_by("id"))
    assert [r.status for r in runs] == ["continued", "continued", "continued", "completed"]
    assert [r.input["round"] for r in runs] == [0, 1, 2, 3]
    assert [r.continued_from_id for r in runs] == [None, *(r.pk for r in runs[:-1])]
    assert runs[-1].result == 3
    # Each run holds its own two attempts and a context of its input and its own writes.
    assert [r.steps.count() for r in runs] == [2, 2, 2, 2]
    assert all(set(r.context) == {"round", "rounds", "journal", "seen"} for r in runs)
    assert [e for e, *_ in entries(journal)] == ["poll-0", "poll-1", "poll-2", "poll-3"]
    assert [w for _, w, _, _ in entries(journal)] == [r.workflow_id for r in runs]


def test_patched_keeps_each_runs_answer_across_a_deploy_and_the_check_reports_unpatched_changes(
    workers: WorkerPool, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    workers.start(1, workflow_modules=V1)
    old = durable.start("semantics_shipping", {"journal": str(journal)})
    wait_for(old, "waiting", workers)
    workers.stop_all()
    assert set(StepCode.objects.get(workflow_name="semantics_shipping").steps) == {
        "ship",
        "notify",
    }

    unguarded = deploy_check(V3)
    assert unguarded.returncode == 1, unguarded.stdout + unguarded.stderr
    assert f"semantics_shipping\t{old}\twaiting\tstep=notify\tunpatched change" in unguarded.stdout
    assert "step=ship" not in unguarded.stdout
    guarded = deploy_check(V2)
    assert guarded.returncode == 0, guarded.stdout + guarded.stderr
    assert "no in-flight execution has an unpatched step change ahead" in guarded.stdout

    workers.start(1, workflow_modules=V2)  # the deploy
    new = durable.start("semantics_shipping", {"journal": str(journal)})
    wait_for(new, "waiting", workers)
    workers.stop_all()
    workers.start(1, workflow_modules=V2)  # and another: fresh processes, same code
    durable.send_event(old, "picked_up", {})
    durable.send_event(new, "picked_up", {})
    wait_for(old, "completed", workers)
    wait_for(new, "completed", workers)

    def lines(wid: str) -> list[str]:
        return [e for e, w, _, _ in entries(journal) if w == wid]

    # The old run passed the first patch point under the old code: it replays it the old
    # way; the second point it reaches only now, under the new code.
    assert lines(old) == ["packed", "packed", "shipped-new"]
    assert lines(new) == ["packed-new", "packed-new", "shipped-new"]
    old_run = WorkflowExecution.objects.get(workflow_id=old)
    new_run = WorkflowExecution.objects.get(workflow_id=new)
    assert old_run.patches == {"label-printer": False, "express": True}
    assert new_run.patches == {"label-printer": True, "express": True}
    assert old_run.result == "label-printer=False express=True"
    assert new_run.result == "label-printer=True express=True"
