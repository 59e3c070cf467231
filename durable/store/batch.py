"""Batch checkpoints: the successful steps of many executions recorded in one transaction.

A worker's threads hand their completed steps to a group commit (durable.engine.
groupcommit), which checkpoints whatever has gathered while the previous batch committed.
For each step the effect is `checkpoints.complete_step`'s; the writes of the whole batch go
in one statement per kind (lock the executions, delete the tasks, complete the attempt
rows, insert the next tasks and their attempts, update the executions, publish the events)
and one commit, instead of a transaction of ten statements per step.

PostgreSQL only, and only plain checkpoints (`eligible`): a step that consumed events,
started children or appends to an earlier run's log, a workflow under flow control, a
deploy's restructured execution or a child workflow's is checkpointed alone. So is a
second step of an execution already in the batch. Those come back as `ALONE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.exceptions import LeaseLost
from durable.flow.ops import Op
from durable.models import Task, WorkflowExecution
from durable.signals import batched_events
from durable.store import hot
from durable.store.checkpoints import Moved, move_on
from durable.store.claims import (
    Chain,
    attempt_kind,
    attempt_scope_key,
    claim_in_transaction,
    new_chain_lease,
    start_chained,
    step_event,
)
from durable.store.executions import ACTIVE, Deferred, clean_up, loaded_values, save_changed
from durable.store.hot import AttemptOutcome, Lease
from durable.store.livelogs import resumes_attempt
from durable.store.notify import announce_tasks
from durable.store.records import ClaimedTask, WaitEffects


class Alone:
    """The outcome of a completion the batch left out: checkpoint it with complete_step."""

    def __repr__(self) -> str:
        return "ALONE"


ALONE = Alone()


@dataclass
class Completion:
    """A step that ran successfully, waiting for its checkpoint."""

    claim: ClaimedTask
    definition: Definition
    ops: list[Op]
    output: Any
    duration_ms: int
    logs: list[dict[str, Any]] | None
    chain: Chain | None  # leave to claim the execution's next step, as complete_step's


# What a completion came to: the chained claim (or None), a LeaseLost, or ALONE.
Result = ClaimedTask | None | LeaseLost | Alone


def eligible(
    claim: ClaimedTask, definition: Definition, waits: WaitEffects | None, using: str
) -> bool:
    """Whether a successful step's checkpoint may join a batch (known before it is sent)."""
    if not hot.supported(using) or claim.kind != "step" or resumes_attempt(claim):
        return False
    if waits is not None and (waits.children or waits.consumed_events or waits.timed_out_inputs):
        return False
    # Flow control locks its scope rows as it queues steps: in a batch, two executions'
    # scopes could be locked in either order.
    return definition.flow is None and not _queues_rate_limited()


def _queues_rate_limited() -> bool:
    queues = durable_settings.QUEUES
    if not isinstance(queues, dict):
        return False
    return any(durable_settings.queue_rate_limit(name) is not None for name in queues)


def complete_steps(items: Sequence[Completion], *, using: str) -> list[Result]:
    """Checkpoint `items` together; one Result per item, in order."""
    results: list[Result] = [ALONE] * len(items)
    now = timezone.now()
    with transaction.atomic(using=using), batched_events(using):
        executions = hot.lock_executions({item.claim.execution_pk for item in items}, using)
        batched = _batchable(items, executions)
        if not batched:
            return results
        tasks = hot.delete_tasks(
            [(items[i].claim.task_id, items[i].claim.lease_token) for i in batched], using
        )
        ours: list[tuple[int, Task]] = []
        for index in batched:
            claim = items[index].claim
            task = tasks.get(claim.task_id)
            if task is None:
                results[index] = LeaseLost(
                    f"step {claim.step!r} of {claim.workflow_id} (attempt {claim.attempt}): "
                    "the lease was lost or the execution ended; this outcome is discarded"
                )
            else:
                ours.append((index, task))
        if not ours:
            return results
        hot.complete_attempts([_attempt(items[i], task) for i, task in ours], now, using)
        deferred = Deferred()
        chained: list[tuple[int, Task, Lease]] = []
        updated: list[WorkflowExecution] = []
        leases = _Leases(now, using)
        for index, task in ours:
            item = items[index]
            results[index] = None
            step_event("step_completed", item.claim, task, using, duration_ms=item.duration_ms)
            execution = executions[task.execution_id]
            if execution.status not in ACTIVE:
                continue
            loaded = loaded_values(execution)
            moved = move_on(
                item.claim,
                item.definition,
                execution,
                ops=item.ops,
                output=item.output,
                using=using,
                lease=leases.for_chain(item.chain),
                deferred=deferred,
            )
            if moved.chained is not None and moved.lease is not None:
                chained.append((index, moved.chained, moved.lease))
            _save(execution, loaded, moved, updated, using)
        if deferred.tasks:
            hot.insert_tasks(deferred.tasks, now, using)
            claimed = {id(task) for _, task, _ in chained}
            announce_tasks([task for task in deferred.tasks if id(task) not in claimed], using)
        if chained:
            claims = start_chained([(task, lease) for _, task, lease in chained], now, using)
            for (index, _, _), claim in zip(chained, claims, strict=True):
                results[index] = claim
        if updated:
            hot.update_executions(updated, now, using)
        if deferred.finished:
            clean_up(deferred.finished, now, using)
        _refill(items, [index for index, _ in ours], results, now, using)
    return results


def _refill(
    items: Sequence[Completion],
    indexes: list[int],
    results: list[Result],
    now: datetime,
    using: str,
) -> None:
    """Claim a due task of its queue, in this transaction, for each thread whose chain
    ended here (its execution finished, waits or yields): it runs that next instead of
    going back to its worker's claim loop, a transaction of its own."""
    free: dict[str, list[int]] = {}
    for index in indexes:
        if results[index] is None and items[index].chain is not None:
            free.setdefault(items[index].claim.queue, []).append(index)
    for queue, waiting in free.items():
        chain = items[waiting[0]].chain
        assert chain is not None
        claimed = claim_in_transaction(len(waiting), new_chain_lease(chain, queue, now), now, using)
        for index, claim in zip(waiting, claimed, strict=False):
            results[index] = claim


def _batchable(items: Sequence[Completion], executions: dict[int, WorkflowExecution]) -> list[int]:
    """Indexes of the items this batch checkpoints; the others go alone."""
    seen: set[int] = set()
    batched = []
    for index, item in enumerate(items):
        execution = executions.get(item.claim.execution_pk)
        if execution is None or execution.pk in seen:
            continue  # gone (complete_step says how), or a second step of one execution
        if execution.definition_fingerprint != fingerprint(item.definition):
            continue  # a deploy changed its structure: complete_step checks the position
        if execution.parent_id is not None:
            continue  # finishing wakes the parent, whose row it locks out of id order
        seen.add(execution.pk)
        batched.append(index)
    return batched


def _attempt(item: Completion, task: Task) -> AttemptOutcome:
    return AttemptOutcome(
        execution_id=task.execution_id,
        step=task.step,
        scope_key=attempt_scope_key(task),
        kind=attempt_kind(task),
        attempt=item.claim.attempt,
        output=item.output,
        duration_ms=item.duration_ms,
        logs=item.logs,
    )


def _save(
    execution: WorkflowExecution,
    loaded: dict[str, Any],
    moved: Moved,
    updated: list[WorkflowExecution],
    using: str,
) -> None:
    """Batch the execution's update when only the columns a step moves changed."""
    if moved.saved:
        return
    changed = {name for name, value in loaded.items() if getattr(execution, name) != value}
    if changed <= _BATCHED_COLUMNS:
        updated.append(execution)
    else:
        save_changed(execution, loaded, using)


_BATCHED_COLUMNS = frozenset(hot.BATCH_EXECUTION_FIELDS)


class _Leases:
    """Chain leases for a batch: whether a queue yields (paused, or higher-priority work due)
    is asked once per queue and priority, not once per step."""

    def __init__(self, now: datetime, using: str) -> None:
        self.now = now
        self.using = using
        self._yields: dict[tuple[str, int], bool] = {}

    def for_chain(self, chain: Chain | None) -> Callable[[str, int], Lease | None] | None:
        if chain is None:
            return None

        def lease(queue: str, priority: int) -> Lease | None:
            key = (queue, priority)
            if key not in self._yields:
                self._yields[key] = hot.yields_to_queue(queue, priority, self.now, self.using)
            return None if self._yields[key] else new_chain_lease(chain, queue, self.now)

        return lease
