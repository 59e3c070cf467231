"""Debounce: a burst of starts with one key is one execution, run once with the last input."""

from __future__ import annotations

import pytest
from django.utils import timezone

import durable
from durable.models import Task, WorkflowExecution
from durable.testing import run_until_idle
from tests.flowcontrol import workflows as wf
from tests.integration.support import claim_one, row_counts
from tests.integration.test_concurrency import in_threads


def run_at_of(wid: str) -> object:
    return Task.objects.get(execution__workflow_id=wid).run_at


@pytest.mark.django_db
def test_a_burst_returns_one_id_and_runs_once_with_the_last_input() -> None:
    ids = []
    run_ats = []
    for version in range(50):
        ids.append(durable.start(wf.Reindex, {"document": "d1", "version": version}))
        run_ats.append(run_at_of(ids[-1]))

    assert set(ids) == {ids[0]}
    assert WorkflowExecution.objects.count() == 1
    # Each start pushes the start to now + debounce.
    assert run_ats == sorted(run_ats)
    assert run_ats[-1] > timezone.now()
    execution = durable.get_execution(ids[0])
    assert execution.input == {"document": "d1", "version": 49}
    assert execution.scheduled_at == run_ats[-1]

    assert run_until_idle() == 1
    execution = durable.get_execution(ids[0])
    assert (execution.status, execution.result) == ("completed", 49)


@pytest.mark.django_db
def test_other_keys_are_debounced_apart() -> None:
    a = durable.start(wf.Reindex, {"document": "a", "version": 1})
    b = durable.start(wf.Reindex, {"document": "b", "version": 1})
    assert a != b


@pytest.mark.django_db
def test_once_the_execution_began_running_a_start_begins_a_new_one() -> None:
    first = durable.start(wf.Reindex, {"document": "d1", "version": 1})
    Task.objects.update(run_at=timezone.now())
    claim = claim_one()
    assert claim is not None
    assert claim.workflow_id == first

    second = durable.start(wf.Reindex, {"document": "d1", "version": 2})
    third = durable.start(wf.Reindex, {"document": "d1", "version": 3})

    assert second != first
    assert third == second
    assert durable.get_execution(first).input["version"] == 1
    assert durable.get_execution(second).input["version"] == 3


@pytest.mark.django_db
def test_a_finished_execution_is_not_joined() -> None:
    first = durable.start(wf.Reindex, {"document": "d1", "version": 1})
    durable.cancel(first)
    assert durable.start(wf.Reindex, {"document": "d1", "version": 2}) != first


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options",
    [{"idempotency_key": "k1"}, {"scheduled_at": timezone.now()}],
)
def test_scheduled_at_and_idempotency_keys_are_refused_and_change_nothing(
    options: dict[str, object],
) -> None:
    durable.start(wf.Reindex, {"document": "d1", "version": 1})
    before = row_counts()
    with pytest.raises(ValueError, match="is debounced"):
        durable.start(wf.Reindex, {"document": "d1", "version": 2}, **options)
    assert row_counts() == before
    assert WorkflowExecution.objects.get().input["version"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_of_one_key_share_one_execution() -> None:
    def burst(i: int) -> list[str]:
        return [
            durable.start(wf.Reindex, {"document": "d1", "version": i * 5 + n}) for n in range(5)
        ]

    ids = {wid for batch in in_threads(10, burst) for wid in batch}

    assert len(ids) == 1
    assert WorkflowExecution.objects.count() == 1
    assert Task.objects.count() == 1
    assert 0 <= WorkflowExecution.objects.get().input["version"] < 50
    assert run_until_idle() == 1
