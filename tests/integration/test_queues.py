"""`durable.queues`: pausing stops claims on every worker; stats count the queue's work."""

from __future__ import annotations

import pytest

import durable
from durable import queues
from durable.models import QueueState, Task
from durable.testing import run_until_idle
from tests.integration import workflows as wf
from tests.integration.support import claim_one, row_counts, run_next, tasks_of

pytestmark = pytest.mark.django_db


def test_a_paused_queue_is_not_claimed_until_resumed() -> None:
    wid = durable.start(wf.QueueHopping, {})
    run_next("default")  # on_default; on_payments is now queued on "payments"
    queues.pause("payments")

    assert claim_one("payments") is None
    assert run_until_idle() == 0
    assert durable.get_execution(wid).status == "running"
    assert [t.step for t in tasks_of(wid)] == ["on_payments"]

    queues.resume("payments")
    assert run_until_idle() == 2
    assert durable.get_execution(wid).status == "completed"


def test_pausing_one_queue_leaves_the_others_running() -> None:
    queues.pause("payments")
    execution_id = durable.start(wf.OneStep, {"echo": "still runs"})

    assert run_until_idle() == 1
    assert durable.get_execution(execution_id).result == "still runs"


def test_a_paused_queue_still_accepts_new_work() -> None:
    queues.pause("high_priority")
    wid = durable.start(wf.OneStep, {}, queue="high_priority")

    assert queues.get_stats("high_priority")["pending"] == 1
    assert run_until_idle() == 0
    queues.resume("high_priority")
    assert run_until_idle() == 1
    assert durable.get_execution(wid).status == "completed"


def test_pause_and_resume_are_idempotent() -> None:
    queues.pause("payments")
    queues.pause("payments")
    assert queues.get_stats("payments")["paused"] is True
    queues.resume("payments")
    queues.resume("payments")
    assert queues.get_stats("payments")["paused"] is False
    assert QueueState.objects.filter(name="payments").count() == 1


def test_get_stats_counts_running_and_pending_work() -> None:
    assert queues.get_stats("default") == {
        "running": 0,
        "pending": 0,
        "concurrency": 8,
        "paused": False,
    }
    for _ in range(3):
        durable.start(wf.OneStep, {})
    durable.start(wf.FlakyConstant, {})
    assert claim_one("default") is not None
    assert claim_one("default") is not None

    assert queues.get_stats("default") == {
        "running": 2,
        "pending": 2,
        "concurrency": 8,
        "paused": False,
    }
    assert queues.get_stats("payments") == {
        "running": 0,
        "pending": 0,
        "concurrency": 2,
        "paused": False,
    }


def test_get_stats_counts_work_waiting_out_a_backoff_as_pending() -> None:
    durable.start(wf.FlakyConstant, {})
    run_until_idle(skip_delays=False)

    assert queues.get_stats("default")["pending"] == 1
    assert queues.get_stats("default")["running"] == 0


@pytest.mark.parametrize("call", [queues.pause, queues.resume, queues.get_stats])
def test_unknown_queue_names_raise_and_write_nothing(call) -> None:
    before = row_counts()
    with pytest.raises(ValueError, match="queue 'nowhere' is not configured"):
        call("nowhere")
    assert row_counts() == before


def test_claims_by_id_respect_a_global_cap_and_send_the_rest_back_shortly(settings) -> None:
    """A broker delivers task ids; over the queue's global cap they go back to it, due again
    in a moment, instead of being dropped as stale."""
    from durable.store import claims

    settings.DURABLE = {
        **settings.DURABLE,
        "QUEUES": {
            **settings.DURABLE["QUEUES"],
            "default": {"concurrency": 8, "global_concurrency": 2},
        },
    }
    ids = [durable.start(wf.OneStep, {"n": n}) for n in range(3)]
    held = claims.claim_tasks("default", 1, worker_id="a", lease_seconds=30, using="default")
    assert len(held) == 1
    task_ids = list(
        Task.objects.filter(execution__workflow_id__in=ids, status="ready").values_list(
            "id", flat=True
        )
    )

    result = claims.claim_task_ids(
        "default", task_ids, worker_id="b", lease_seconds=30, using="default"
    )

    assert len(result.claimed) == 1  # 2 in all with the one held
    assert len(result.not_due) == 1  # sent back, due again shortly
    assert Task.objects.filter(status="claimed").count() == 2
    assert claims.claim_tasks("default", 5, worker_id="c", lease_seconds=30, using="default") == []
