"""Batch checkpoints: the successful steps of many executions recorded in one transaction.

A worker's threads hand their completed steps to a group commit (durable.engine.
groupcommit), which checkpoints whatever has gathered while the previous batch committed.
For each step the effect is `checkpoints.complete_step`'s; the writes of the whole batch go
in one statement per kind (lock the executions, delete the tasks, complete the attempt
rows, insert the next tasks and their attempts, update the executions, publish the events)
and one commit, instead of a transaction of about fifteen statements per step.

PostgreSQL only, and only plain checkpoints (`eligible`): a step that consumed events,
started children or appends to an earlier run's log, a workflow under flow control, a
deploy's restructured execution or a child workflow's is checkpointed alone. So is a
second step of an execution already in the batch. Those come back as `ALONE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl.fingerprint import fingerprint
from durable.dsl.nodes import Definition
from durable.exceptions import LeaseLost
from durable.flow.ops import Op, copy_json
from durable.flow.token import Token
from durable.models import Task, WorkflowExecution
from durable.store import hot, outbox
from durable.store.checkpoints import Moved, move_on
from durable.store.claims import (
    Chain,
    attempt_kind,
    attempt_scope_key,
    new_chain_lease,
    start_chained,
    start_claims,
    step_event,
)
from durable.store.executions import (
    ACTIVE,
    Deferred,
    changed_columns,
    loaded_values,
    release_slots,
    save_changed,
    send_clean_up,
)
from durable.store.hot import AttemptOutcome, Lease
from durable.store.livelogs import resumes_attempt
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

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.definition)


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
    """Checkpoint `items` together; one Result per item, in order.

    A fixed number of round trips whatever the batch's size: statements that need no
    answer in between are sent together (hot.pipeline)."""
    results: list[Result] = [ALONE] * len(items)
    candidates = _candidates(items)
    if not candidates:
        return results
    now = timezone.now()
    with transaction.atomic(using=using), outbox.collecting(using):
        # Executions first, then their tasks: the order every checkpoint locks in.
        with hot.pipeline(using):
            locking = hot.lock_executions({items[i].claim.execution_pk for i in candidates}, using)
            asking = {queue: hot.queue_head(queue, now, using) for queue in _queues(items)}
            executions = locking.result()
        heads = {queue: head.result() for queue, head in asking.items()}
        batched = _batchable(items, candidates, executions)
        if not batched:
            return results
        leases = [(items[i].claim.task_id, items[i].claim.lease_token) for i in batched]
        tasks = hot.delete_tasks(leases, using).result()
        ours = _taken(items, batched, tasks, results)
        if not ours:
            return results

        # Route each execution on, in memory (the rare paths write as they go).
        deferred = Deferred()
        chained: list[tuple[int, Task, Lease]] = []
        updated: list[WorkflowExecution] = []
        for index, task in ours:
            item = items[index]
            results[index] = None
            step_event("step_completed", item.claim, task, using, duration_ms=item.duration_ms)
            execution = executions[task.execution_id]
            if execution.status not in ACTIVE:
                continue
            loaded = loaded_values(execution)
            # Routing changes the token (and may keep what it is given) in place, and a
            # batch that fails hands the same completion to complete_step: route copies.
            claim = replace(item.claim, token=Token.from_json(item.claim.token.to_json()))
            moved = move_on(
                claim,
                item.definition,
                execution,
                ops=copy_json(item.ops),
                output=copy_json(item.output),
                using=using,
                lease=_chain_leases(item.chain, heads, now),
                deferred=deferred,
            )
            if moved.chained is not None and moved.lease is not None:
                chained.append((index, moved.chained, moved.lease))
            _save(execution, loaded, moved, updated, using)
        free = _free(items, ours, {index for index, _, _ in chained}, now)

        with hot.pipeline(using):
            hot.complete_attempts([_attempt(items[i], task) for i, task in ours], now, using)
            inserting = hot.insert_tasks(deferred.tasks, now, using) if deferred.tasks else None
            if updated:
                hot.update_executions(updated, now, using)
            # After the attempts: finishing fails the attempts still running.
            freed = send_clean_up(deferred.finished, now, using) if deferred.finished else []
            # After the inserts and clean-ups: new tasks may be claimed, deleted ones not.
            refills = [
                (waiting, lease, hot.claim_ready(queue, len(waiting), lease, now, using))
                for queue, (waiting, lease) in free.items()
            ]
            if inserting is not None:
                inserting.result()
        release_slots(freed, using)

        with hot.pipeline(using):
            if deferred.tasks:
                taken = {id(task) for _, task, _ in chained}
                outbox.ready([t for t in deferred.tasks if id(t) not in taken], using)
            if chained:
                claims = start_chained([(task, lease) for _, task, lease in chained], now, using)
                for (index, _, _), claim in zip(chained, claims, strict=True):
                    results[index] = claim
            for waiting, lease, claiming in refills:
                claims = start_claims(claiming.result(), lease, now, using)
                for index, claim in zip(waiting, claims, strict=False):
                    results[index] = claim
    return results


def _candidates(items: Sequence[Completion]) -> list[int]:
    """Indexes of the items the batch may take: the others go alone."""
    seen: set[int] = set()
    candidates = []
    for index, item in enumerate(items):
        claim = item.claim
        if claim.execution_pk in seen:
            continue  # a second step of one execution: checkpointed after the first
        if claim.fingerprint != item.fingerprint:
            continue  # a deploy changed its structure: complete_step checks the position
        seen.add(claim.execution_pk)
        candidates.append(index)
    return candidates


def _queues(items: Sequence[Completion]) -> set[str]:
    return {item.claim.queue for item in items if item.chain is not None}


def _batchable(
    items: Sequence[Completion], candidates: list[int], executions: dict[int, WorkflowExecution]
) -> list[int]:
    """The candidates the batch checkpoints. The others go alone: their execution is gone,
    was restructured by a deploy, or is a child, which wakes its parent when it finishes
    (a row the batch would lock out of id order)."""
    return [
        index
        for index in candidates
        if (execution := executions.get(items[index].claim.execution_pk)) is not None
        and execution.definition_fingerprint == items[index].fingerprint
        and execution.parent_id is None
    ]


def _taken(
    items: Sequence[Completion], batched: list[int], tasks: dict[int, Task], results: list[Result]
) -> list[tuple[int, Task]]:
    """The batched items whose tasks were deleted; the others lost their lease."""
    ours = []
    for index in batched:
        claim = items[index].claim
        task = tasks.get(claim.task_id)
        if task is not None:
            ours.append((index, task))
            continue
        results[index] = LeaseLost(
            f"step {claim.step!r} of {claim.workflow_id} (attempt {claim.attempt}): "
            "the lease was lost or the execution ended; this outcome is discarded"
        )
    return ours


def _free(
    items: Sequence[Completion], ours: list[tuple[int, Task]], chained: set[int], now: datetime
) -> dict[str, tuple[list[int], Lease]]:
    """Per queue, the threads whose chain ended here (their execution finished, waits or
    yields) and the lease to claim them a due task of the queue under: each runs that
    next instead of going back to its worker's claim loop, a transaction of its own."""
    free: dict[str, tuple[list[int], Lease]] = {}
    for index, _ in ours:
        chain = items[index].chain
        if index in chained or chain is None:
            continue
        queue = items[index].claim.queue
        if queue not in free:
            free[queue] = ([], new_chain_lease(chain, queue, now))
        free[queue][0].append(index)
    return free


def _chain_leases(
    chain: Chain | None, heads: dict[str, hot.QueueHead], now: datetime
) -> Callable[[str, int], Lease | None] | None:
    """complete_step's chain leases, with the queues' heads read once for the batch."""
    if chain is None:
        return None

    def lease(queue: str, priority: int) -> Lease | None:
        head = heads.get(queue)
        if head is None or head.yields(priority):
            return None
        return new_chain_lease(chain, queue, now)

    return lease


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
    if changed_columns(execution, loaded) <= _BATCHED_COLUMNS:
        updated.append(execution)
    else:
        save_changed(execution, loaded, using)


_BATCHED_COLUMNS = frozenset(hot.BATCH_EXECUTION_FIELDS)
