"""The checkpoint: records outcomes of claimed tasks and moves their executions on.

`apply` is the one way an outcome is recorded, whoever hands it in: a worker's committer
with the outcomes gathered while its last batch committed, an inline run with one, a
transactional step inside its own transaction. A lone outcome is a batch of one.

A batch is one transaction that
1. locks its executions (in id order, as every writer does) and takes its tasks under
   their leases: a task whose lease was lost is not found, and its outcome is answered
   with `LeaseLost`, committing nothing of it;
2. plans, outcome by outcome and in memory, what each one changes (`Plan`): the attempt
   row, the context, the tasks to queue, the execution's status; the rare paths (a deploy
   that moved the step, compensations, waits, children, flow control) write as they go;
3. writes the plan with one statement per kind of write (durable.store.backend), and
   sends what it makes known through the outbox (durable.store.outbox).

Outcomes go in one batch when nothing they do takes locks beyond their execution and
task; the others (failures, waits, compensations, flow control, children...) each get a
transaction of their own, with the same code. A batch that fails commits nothing, and its
outcomes are tried again one by one, so an error belongs to the outcome that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl.fingerprint import fingerprint
from durable.exceptions import ExecutionNotFound, LeaseLost, NonRetryable
from durable.flow.ops import copy_json
from durable.flow.result import take_result
from durable.flow.router import FlowError, FlowState, Router
from durable.flow.token import Token
from durable.models import ExecutionStatus, StepStatus, Task, TaskStatus, WorkflowExecution
from durable.signals import lifecycle_event
from durable.store import outbox
from durable.store.backend import backend, save_changed
from durable.store.branches import StoredBranches
from durable.store.claims import (
    attempt_key,
    attempt_rows,
    new_chain_lease,
    start_chained,
    start_claims,
    step_event,
)
from durable.store.deploys import check_checkpoint
from durable.store.executions import (
    ACTIVE,
    Deferred,
    apply_advance,
    changed_columns,
    enqueue_compensation,
    fail_execution,
    finish,
    loaded_values,
    mark_step_rows,
    release_freed,
    settle_statuses,
)
from durable.store.livelogs import resumes_attempt
from durable.store.outcomes import (
    Compensated,
    Continued,
    Failed,
    Outcome,
    Parked,
    Result,
    Settled,
    Succeeded,
)
from durable.store.records import error_record
from durable.store.rows import UNLEASED, AttemptEnd, Lease, QueueHead
from durable.store.sql import Pending
from durable.store.starts import continue_execution
from durable.store.waits import apply_wait_effects, suspend_step


def apply(outcomes: Sequence[Outcome], *, using: str) -> list[Result]:
    """Record `outcomes`; one Result per outcome, in order. Never raises: what an outcome
    met (LeaseLost, a database error) is its Result, and nothing of it committed."""
    results: dict[int, Result] = {}
    batch = [i for i, outcome in enumerate(outcomes) if _batchable(outcome)]
    batched = set(batch)
    groups = [batch] if batch else []
    groups += [[i] for i in range(len(outcomes)) if i not in batched]
    while groups:
        group = groups.pop(0)
        try:
            with transaction.atomic(using=using):
                done = _apply_group([(i, outcomes[i]) for i in group], using)
        except Exception as exc:
            if len(group) > 1:
                groups[:0] = [[i] for i in group]
            else:
                results[group[0]] = exc
            continue
        results.update(done)
    return [results[i] for i in range(len(outcomes))]


def _batchable(outcome: Outcome) -> bool:
    """Whether an outcome may share a transaction: nothing it does locks rows beyond its
    execution and task (so batches never wait for each other in a cycle)."""
    if not isinstance(outcome, Succeeded) or outcome.definition is None:
        return False
    claim, waits = outcome.claim, outcome.waits
    if claim.kind != "step" or resumes_attempt(claim):
        return False
    if waits is not None and (waits.children or waits.consumed_events or waits.timed_out_inputs):
        return False
    if claim.fingerprint != fingerprint(outcome.definition):
        return False  # a deploy changed its structure: its position is checked first
    if claim.parent_pk is not None:
        return False  # a child: its end wakes its parent, a row out of the batch's order
    # Flow control locks its scope rows as it queues steps.
    return outcome.definition.flow is None and not _queues_rate_limited()


def _queues_rate_limited() -> bool:
    queues = durable_settings.QUEUES
    if not isinstance(queues, dict):
        return False
    return any(durable_settings.queue_rate_limit(name) is not None for name in queues)


@dataclass
class Plan:
    """What a batch writes once for all its outcomes."""

    now: datetime
    attempts: list[AttemptEnd] = field(default_factory=list)
    deferred: Deferred = field(default_factory=Deferred)  # tasks to insert, executions ended
    # The executions changed, with their columns as locked (see loaded_values).
    executions: dict[int, tuple[WorkflowExecution, dict[str, Any]]] = field(default_factory=dict)
    # Tasks inserted claimed for the outcome at an index (a chain).
    chained: list[tuple[int, Task, Lease]] = field(default_factory=list)
    # Outcomes whose chain ended here, to be given a due task of their queue (a refill).
    refills: dict[str, tuple[list[int], Lease]] = field(default_factory=dict)
    heads: dict[str, QueueHead] = field(default_factory=dict)
    # Executions whose status depends on the tasks they have left (settled in `_write`).
    settle: dict[int, WorkflowExecution] = field(default_factory=dict)
    # The executions the router ran on, and whether it changed their root contexts: it
    # changes the JSON values in place, so comparing with the values as locked proves
    # nothing. Their fanouts are written; their contexts when changed.
    rerouted: dict[int, bool] = field(default_factory=dict)
    branches: dict[int, StoredBranches] = field(default_factory=dict)

    def routed(self, pk: int, context_changed: bool) -> None:
        self.rerouted[pk] = self.rerouted.get(pk, False) or context_changed

    def branches_of(self, pk: int, using: str) -> StoredBranches:
        if pk not in self.branches:
            self.branches[pk] = StoredBranches(pk, using)
        return self.branches[pk]

    def track(self, execution: WorkflowExecution) -> None:
        if execution.pk not in self.executions:
            self.executions[execution.pk] = (execution, loaded_values(execution))


def _apply_group(outcomes: list[tuple[int, Outcome]], using: str) -> dict[int, Result]:
    """Inside a transaction: record `outcomes`; their results."""
    db = backend(using)
    now = timezone.now()
    plan = Plan(now)
    results: dict[int, Result] = {}
    batched = len(outcomes) > 1
    with outbox.collecting(using):
        queues = {o.claim.queue for _, o in outcomes if isinstance(o, Succeeded) and o.chain}
        # One round trip: the executions locked (first, in id order, as every writer
        # does), the queues' heads, and our tasks taken under their leases.
        with db.pipeline():
            locking = db.lock_executions({o.claim.execution_pk for _, o in outcomes})
            heads = {queue: db.queue_head(queue, now) for queue in queues}
            takes = _take(db, [outcome for _, outcome in outcomes])
            executions = locking.result()
            tasks = {task_id: task for taken in takes for task_id, task in taken.result().items()}
        plan.heads = {queue: head.result() for queue, head in heads.items()}
        if batched and any(
            _must_go_alone(o, executions.get(o.claim.execution_pk)) for _, o in outcomes
        ):
            # What the claims told was not so (a restructured or child execution): undo
            # the batch; its outcomes go one by one.
            raise _Regroup()
        for index, outcome in outcomes:
            if outcome.claim.execution_pk not in executions:
                results[index] = ExecutionNotFound(
                    f"no execution with id {outcome.claim.workflow_id!r}"
                )
        taking = [(i, o) for i, o in outcomes if o.claim.execution_pk in executions]
        for index, outcome in taking:
            task = tasks.get(outcome.claim.task_id)
            if task is None:
                results[index] = _lease_lost(outcome)
                continue
            execution = executions[outcome.claim.execution_pk]
            plan.track(execution)
            handler = next(h for kind, h in _HANDLERS.items() if isinstance(outcome, kind))
            results[index] = handler(index, outcome, task, execution, plan, using)
        _write(db, plan, results, using)
    return results


class _Regroup(Exception):
    """A batch met an outcome that needs a transaction of its own."""


def _must_go_alone(outcome: Outcome, execution: WorkflowExecution | None) -> bool:
    """What `_batchable` decided from the claim, checked on the locked row: a deploy
    restructured it (its position is checked first), or it is a child, whose end wakes its
    parent (a row a batch would lock out of id order)."""
    if execution is None or outcome.definition is None:
        return False
    return execution.definition_fingerprint != fingerprint(outcome.definition) or (
        execution.parent_id is not None
    )


def _take(db: Any, outcomes: list[Outcome]) -> list[Pending[dict[int, Task]]]:
    """Take our tasks: a success's is deleted at once (its step is done), unless a deploy
    check may park it; the others are locked, for their handler to update or delete."""
    leases: dict[bool, list[tuple[int, Any]]] = {True: [], False: []}
    for outcome in outcomes:
        claim = outcome.claim
        deletes = isinstance(outcome, Succeeded) and outcome.definition is not None
        deletes = deletes and claim.fingerprint == fingerprint(outcome.definition)  # type: ignore[arg-type]
        leases[deletes].append((claim.task_id, claim.lease_token))
    return [db.take_tasks(pairs, delete=delete) for delete, pairs in leases.items() if pairs]


def _lease_lost(outcome: Outcome) -> LeaseLost:
    claim = outcome.claim
    return LeaseLost(
        f"{claim.kind} {claim.step!r} of {claim.workflow_id} (attempt {claim.attempt}): "
        "the lease was lost or the execution ended; this outcome is discarded"
    )


# -- outcomes ----------------------------------------------------------------------------


def _attempt(
    plan: Plan,
    outcome: Outcome,
    task: Task,
    status: str,
    using: str,
    *,
    output: Any = None,
    error: dict[str, Any] | None = None,
) -> None:
    """How the attempt ended; a run resumed after a wait appends its log lines to what
    the attempt's earlier runs logged."""
    logs = outcome.logs
    if logs is not None and resumes_attempt(outcome.claim):
        earlier = attempt_rows(task, outcome.claim.attempt, using).values_list("logs", flat=True)
        logs = [*(earlier.first() or []), *logs]
    plan.attempts.append(
        AttemptEnd(
            attempt_key(task, outcome.claim.attempt),
            status,
            outcome.duration_ms,
            output=output,
            error=error,
            logs=logs,
        )
    )


def _succeeded(
    index: int,
    outcome: Outcome,
    task: Task,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> Result:
    assert isinstance(outcome, Succeeded)
    definition = outcome.definition
    assert definition is not None
    claim = outcome.claim
    if claim.fingerprint != fingerprint(definition):
        # A deploy that changed the structure may park the execution, this task with it,
        # so the task is deleted only once the position check passed.
        if not check_checkpoint(claim, definition, execution, using=using):
            return Settled()  # parked: a deploy removed where this step's token goes next
        task.delete(using=using)
    apply_wait_effects(task, outcome.waits, using)
    _record_patches(execution, outcome)
    _attempt(plan, outcome, task, StepStatus.COMPLETED, using, output=outcome.output)
    step_event("step_completed", claim, task, using, duration_ms=outcome.duration_ms)
    if execution.status in ACTIVE:
        _move_on(index, outcome, execution, plan, using)
    return Settled()


def _move_on(
    index: int,
    outcome: Succeeded,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> None:
    """Route the execution on from a completed step: apply its ops, queue what comes next
    (the first step on the claim's queue inserted claimed, when the outcome may chain),
    finish it at the end, settle its status."""
    definition = outcome.definition
    assert definition is not None
    claim = outcome.claim
    if execution.started_at is None:
        # Its claim could not mark it running (a transaction held the row): it is now.
        execution.started_at = claim.claimed_at
    ops, result = take_result(copy_json(outcome.ops))
    if result is not None:
        execution.result, execution.result_explicit = result[1], True
    state = FlowState(
        execution.context,
        execution.fanouts,
        execution.workflow_id,
        execution.input,
        branches=plan.branches_of(execution.pk, using),
    )
    # Routing changes the token (and may keep what it is given) in place, and a batch that
    # fails hands the same outcome to a transaction of its own: route copies.
    token = Token.from_json(claim.token.to_json())
    output = copy_json(outcome.output)
    try:
        advance = Router(definition, state).step_done(token, ops, output)
    except FlowError as exc:
        plan.routed(execution.pk, state.context_changed)
        fail_execution(
            execution,
            definition,
            error_record(exc),
            using=using,
            deferred=plan.deferred,
            save=False,
        )
        return
    execution.context, execution.fanouts = state.context, state.fanouts
    plan.routed(execution.pk, state.context_changed)
    lease = None
    if outcome.chain is not None and advance.ready and not advance.completed:
        head = plan.heads.get(claim.queue)
        if head is not None and not head.yields(execution.priority):
            lease = new_chain_lease(outcome.chain, claim.queue, plan.now)
    chained = apply_advance(
        execution,
        definition,
        advance,
        using=using,
        output=output,
        lease=lease,
        deferred=plan.deferred,
    )
    if advance.ready and execution.status in ACTIVE:
        execution.status = ExecutionStatus.RUNNING  # what settling would find
    else:
        plan.settle[execution.pk] = execution
    if chained is not None and lease is not None:
        plan.chained.append((index, chained, lease))
    elif outcome.chain is not None:
        # The chain ended here: a due task of the queue is claimed for the caller instead.
        waiting, _ = plan.refills.setdefault(
            claim.queue, ([], new_chain_lease(outcome.chain, claim.queue, plan.now))
        )
        waiting.append(index)


def _failed(
    index: int,
    outcome: Outcome,
    task: Task,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> Result:
    """A failed attempt: retried after its backoff, or the execution fails. Waits the
    attempt passed keep their values for the retry."""
    assert isinstance(outcome, Failed)
    claim, definition, error = outcome.claim, outcome.definition, outcome.error
    apply_wait_effects(task, outcome.waits, using)
    _record_patches(execution, outcome)
    if outcome.waits is not None:
        task.token = {**task.token, "waits": outcome.waits.recorded}
    _attempt(plan, outcome, task, StepStatus.FAILED, using, error=error)
    if claim.kind == "compensate" and execution.status == ExecutionStatus.COMPENSATING:
        # A compensation this worker cannot even load (its workflow or step is unknown
        # here): with no definition the saga cannot go on, so it ends instead of waiting.
        task.delete(using=using)
        _add_compensation_error(execution, claim.step, error)
        finish(
            execution,
            ExecutionStatus.COMPENSATION_FAILED,
            using=using,
            deferred=plan.deferred,
            save=False,
        )
        return Settled()
    if execution.status not in ACTIVE:
        task.delete(using=using)
        return Settled()
    retry = definition.retry_for(definition.step(claim.step)) if definition else None
    # Attempts count from the current run's first (see durable.store.restarts).
    tried = claim.attempt - execution.attempt_floor
    if outcome.retryable and retry is not None and tried < retry.max_attempts:
        run_at = plan.now + timedelta(seconds=retry.delay_after(tried))
        _reschedule(task, run_at, using)
        plan.settle[execution.pk] = execution
        step_event(
            "step_retrying", claim, task, using, error=_brief(error), retry_at=run_at.isoformat()
        )
        return Settled(retry_at=run_at)
    task.delete(using=using)
    step_event("step_failed", claim, task, using, error=_brief(error))
    fail_execution(execution, definition, error, using=using, deferred=plan.deferred, save=False)
    return Settled()


def _brief(error: dict[str, Any]) -> dict[str, Any]:
    return {"type": error.get("type"), "message": error.get("message")}


def _reschedule(task: Task, run_at: datetime, using: str) -> None:
    task.status = TaskStatus.READY
    task.attempt += 1
    task.run_at = run_at
    for name, value in UNLEASED.items():
        setattr(task, name, value)
    task.wait = None  # a retry waits afresh (recorded values of passed waits are kept)
    task.save(using=using)
    outbox.ready([task], using)


def _parked(
    index: int,
    outcome: Outcome,
    task: Task,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> Result:
    """The attempt is waiting: its task is parked until the wait is due or satisfied."""
    assert isinstance(outcome, Parked)
    claim, wait = outcome.claim, outcome.wait
    assert wait is not None
    assert outcome.waits is not None
    if execution.status not in ACTIVE:
        task.delete(using=using)
        return Settled()
    _attempt(plan, outcome, task, StepStatus.WAITING, using)
    _record_patches(execution, outcome)
    suspend_step(claim, task, execution, wait, outcome.waits, using=using)
    if execution.status == ExecutionStatus.WAITING:
        outbox.event(
            lifecycle_event(
                "workflow_waiting",
                claim.workflow_id,
                claim.workflow_name,
                step=claim.step,
                wait={"kind": wait.kind, "name": wait.name},
            ),
            using,
        )
    return Settled()


def _continued(
    index: int,
    outcome: Outcome,
    task: Task,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> Result:
    """`ctx.continue_as_new(input)`: the run ends `continued` and its successor starts, in
    this transaction. Whatever else of the run is queued or running is dropped."""
    assert isinstance(outcome, Continued)
    claim, definition = outcome.claim, outcome.definition
    assert definition is not None
    apply_wait_effects(task, outcome.waits, using)
    task.delete(using=using)
    if execution.status not in ACTIVE:
        return Settled()
    if execution.parent_id is not None:
        # Its parent waits on this run's id, which would end without a result.
        error = error_record(
            NonRetryable(
                f"step {claim.step!r} called ctx.continue_as_new() in a child workflow; a "
                "child must finish (its parent waits for its result)"
            ),
            with_traceback=False,
        )
        _attempt(plan, outcome, task, StepStatus.FAILED, using, error=error)
        step_event("step_failed", claim, task, using, error=_brief(error))
        fail_execution(
            execution, definition, error, using=using, deferred=plan.deferred, save=False
        )
        return Settled()
    _record_patches(execution, outcome)
    successor = continue_execution(execution, definition, outcome.input, using=using)
    _attempt(plan, outcome, task, StepStatus.COMPLETED, using, output={"continued_as": successor})
    step_event("step_completed", claim, task, using, duration_ms=outcome.duration_ms)
    finish(execution, ExecutionStatus.CONTINUED, using=using, deferred=plan.deferred, save=False)
    return Settled()


def _record_patches(execution: WorkflowExecution, outcome: Outcome) -> None:
    """Keep the `ctx.patched` answers the attempt gave; an answer the run recorded first
    (another branch, an earlier run) stays."""
    given = outcome.waits.patches if outcome.waits is not None else {}
    if any(patch_id not in execution.patches for patch_id in given):
        execution.patches = {**given, **execution.patches}


def _compensated(
    index: int,
    outcome: Outcome,
    task: Task,
    execution: WorkflowExecution,
    plan: Plan,
    using: str,
) -> Result:
    """A compensation attempt ended (error None: it succeeded); the next one is queued."""
    assert isinstance(outcome, Compensated)
    claim, definition, error = outcome.claim, outcome.definition, outcome.error
    assert definition is not None
    status = StepStatus.COMPLETED if error is None else StepStatus.FAILED
    _attempt(plan, outcome, task, status, using, output=outcome.output, error=error)
    if execution.status != ExecutionStatus.COMPENSATING:
        task.delete(using=using)
        return Settled()
    token = task.token
    if error is not None:
        retry = definition.retry_for(definition.step(claim.step))
        tried = claim.attempt - execution.attempt_floor
        if outcome.retryable and tried < retry.max_attempts:
            _reschedule(task, plan.now + timedelta(seconds=retry.delay_after(tried)), using)
            return Settled()
        _add_compensation_error(execution, claim.step, error)
    else:
        mark_step_rows(
            execution,
            claim.step,
            token.get("scope_key", ""),
            StepStatus.COMPENSATED,
            using=using,
        )
    task.delete(using=using)
    failed = bool(token.get("failed")) or error is not None
    if token.get("remaining"):
        enqueue_compensation(execution, definition, token["remaining"], failed=failed, using=using)
        return Settled()
    final = ExecutionStatus.COMPENSATION_FAILED if failed else ExecutionStatus.COMPENSATED
    finish(execution, final, using=using, deferred=plan.deferred, save=False)
    return Settled()


def _add_compensation_error(execution: WorkflowExecution, step: str, error: dict[str, Any]) -> None:
    # Keep the original failure; list the compensations that failed beside it.
    execution.error = {
        **(execution.error or {}),
        "compensation_errors": [
            *(execution.error or {}).get("compensation_errors", []),
            {"step": step, **error},
        ],
    }


Handler = Callable[[int, Outcome, Task, WorkflowExecution, Plan, str], Result]
_HANDLERS: dict[type, Handler] = {
    Succeeded: _succeeded,
    Failed: _failed,
    Parked: _parked,
    Continued: _continued,
    Compensated: _compensated,
}


# -- writing the plan --------------------------------------------------------------------


def _write(db: Any, plan: Plan, results: dict[int, Result], using: str) -> None:
    """One statement per kind of write, in the order the locks are taken everywhere."""
    now, deferred = plan.now, plan.deferred
    with db.pipeline():
        for branches in plan.branches.values():
            branches.flush()
        if plan.attempts:
            db.end_attempts(plan.attempts, now)
        inserting = db.insert_tasks(deferred.tasks, now) if deferred.tasks else None
        # After the inserts and the takes: what each execution has left decides its status.
        settling = db.parked_only(list(plan.settle)) if plan.settle else None
        if settling is not None:
            settle_statuses(list(plan.settle.values()), settling.result())
        if inserting is not None:
            inserting.result()
    changes = [
        (execution, changed)
        for pk, (execution, loaded) in plan.executions.items()
        if (changed := _changed(execution, loaded, plan.rerouted.get(pk)))
    ]
    batched = [(e, c) for e, c in changes if c <= db.batched_columns]
    if deferred.tasks:
        taken = {id(task) for _, task, _ in plan.chained}
        outbox.ready([t for t in deferred.tasks if id(t) not in taken], using)
    with db.pipeline():
        if batched:
            db.update_executions(batched, now)
        # After the attempts: ending fails the attempts still running.
        ending = db.end_executions(deferred.finished, now) if deferred.finished else None
        if plan.chained:
            claims = start_chained([(task, lease) for _, task, lease in plan.chained], now, using)
            for (index, _, _), claim in zip(plan.chained, claims, strict=True):
                results[index] = Settled(chained=claim)
        # After the inserts and the ends: new tasks may be claimed, deleted ones not.
        for queue, (waiting, lease) in plan.refills.items():
            claimed = start_claims(
                db.claim(queue, len(waiting), lease, now).result(), lease, now, using
            )
            for index, claim in zip(waiting, claimed, strict=False):
                results[index] = replace(_settled(results[index]), chained=claim)
        # The NOTIFY and the events ride the same round trip.
        outbox.flush(using)
    for execution, changed in changes:
        if not changed <= db.batched_columns:
            save_changed(execution, changed, using)
    if ending is not None:
        release_freed(ending.result(), using)


def _changed(execution: WorkflowExecution, loaded: dict[str, Any], routed: bool | None) -> set[str]:
    """The execution's changed columns; when the router ran (routed is not None) its
    fanouts, and its context if routing changed it."""
    changed = changed_columns(execution, loaded)
    if routed is not None:
        changed.add("fanouts")
        if routed:
            changed.add("context")
    return changed


def _settled(result: Result) -> Settled:
    return result if isinstance(result, Settled) else Settled()
