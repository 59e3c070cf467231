"""Behaviour that needs real commits: concurrent claims and starts from several threads, and
inline runs outside a test transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

import durable
from durable.models import Task, WorkflowExecution
from durable.store import claims
from durable.testing import run_workflow
from tests.integration import workflows as wf

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run `target(i)` in `count` threads released together; return results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_concurrent_claims_never_hand_one_task_to_two_workers() -> None:
    for _ in range(30):
        durable.start(wf.OneStep, {})

    def claim_all(i: int) -> list[int]:
        mine = []
        while batch := claims.claim_tasks(
            "default", 3, worker_id=f"w{i}", lease_seconds=30, using="default"
        ):
            mine += [c.task_id for c in batch]
        return mine

    per_worker = in_threads(4, claim_all)
    claimed = [task_id for ids in per_worker for task_id in ids]
    assert len(claimed) == 30
    assert len(set(claimed)) == 30
    leased_by = dict(Task.objects.values_list("id", "leased_by"))
    for i, ids in enumerate(per_worker):
        assert all(leased_by[task_id] == f"w{i}" for task_id in ids)


def test_concurrent_starts_with_one_idempotency_key_create_one_execution() -> None:
    ids = in_threads(6, lambda i: durable.start(wf.OneStep, {"n": i}, idempotency_key="same-order"))

    assert len(set(ids)) == 1
    assert WorkflowExecution.objects.count() == 1
    assert Task.objects.count() == 1


def test_inline_runs_work_outside_a_test_transaction() -> None:
    execution = run_workflow(wf.Fanned, {})

    assert execution.status == "completed", execution.error
    assert execution.context["counter"] == 211
    # The connection is still usable after the executor's connection housekeeping.
    assert WorkflowExecution.objects.filter(status="completed").count() == 1
