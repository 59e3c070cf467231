"""Durable's tables. Field names of the first four models are part of the public contract."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from durable import codecs


class PayloadField(models.JSONField):
    """A JSON column holding user data: written through the payload codec (encrypted with
    `DURABLE["CODEC"]`, see durable.codecs) and decoded when read. Without a codec it is
    a plain JSONField. Lookups into an encoded value (`context__key=...`) match nothing."""

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if hasattr(value, "resolve_expression"):
            return super().get_db_prep_value(value, connection, prepared=True)
        return connection.ops.adapt_json_value(codecs.encode(value), self.encoder)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return codecs.decode(super().from_db_value(value, expression, connection))


def new_workflow_id() -> str:
    return str(uuid.uuid4())


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    # Ended by `ctx.continue_as_new(input)`: a fresh run of the workflow carries on
    # (`continuations`, linked by `continued_from`).
    CONTINUED = "continued"
    # Parked by a deploy that removed its position (see durable.store.deploys): not finished,
    # not active; `error` says which step is missing.
    NEEDS_ATTENTION = "needs_attention"


FINISHED_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.COMPENSATED,
        ExecutionStatus.COMPENSATION_FAILED,
        ExecutionStatus.CONTINUED,
    }
)
# Executions counted as failures in metrics: they did not do what they were started for.
FAILED_STATUSES = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.COMPENSATED, ExecutionStatus.COMPENSATION_FAILED}
)


class StepStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    SKIPPED = "skipped"
    COMPENSATED = "compensated"


class WorkflowExecution(models.Model):
    workflow_id = models.CharField(max_length=64, unique=True, default=new_workflow_id)
    workflow_module = models.CharField(max_length=255)
    workflow_name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=32, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING
    )
    queue = models.CharField(max_length=100, default="default")
    priority = models.IntegerField(default=0)
    input = PayloadField(default=dict)
    context = PayloadField(default=dict)
    current_step = models.CharField(max_length=200, blank=True, default="")
    error = models.JSONField(null=True, blank=True)
    result = PayloadField(null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Beyond the contract: what the engine needs.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    definition_version = models.CharField(max_length=64, blank=True, default="")
    duration_ms = models.BigIntegerField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # Open parallel/foreach fan-outs, by id: a small header each (the context snapshot its
    # branches start from, the parent token, counts); what each branch did is a
    # FanoutBranch row, so a finishing branch writes one row, not the whole fan-out.
    fanouts = PayloadField(default=dict, blank=True)
    # Composition (ctx.start_child / ctx.set_result): the execution that started this one
    # from a step, and whether a step set `result` (then the last step's output does not).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    result_explicit = models.BooleanField(default=False)
    # Safe deploys and restarts (durable.store.deploys, durable.store.restarts).
    # The structure of the definition the execution started with (durable.dsl.fingerprint).
    definition_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The highest attempt number of the runs before the last `retry`: the re-run's steps
    # number their attempts above it, so earlier attempt rows stay as history.
    attempt_floor = models.PositiveIntegerField(default=0)
    # Long-lived runs: the run this one continues (`ctx.continue_as_new`), and the answers
    # of `ctx.patched(id)` this run gave, kept for the rest of it.
    continued_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="continuations"
    )
    patches = models.JSONField(default=dict, blank=True)
    # The W3C trace context (`traceparent`, `tracestate`) current where the run was
    # started: its workflow and step spans join that trace (durable.telemetry.tracing).
    trace_context = models.JSONField(null=True, blank=True)
    # `durable.fork`: the execution this one was forked from, and the step it started at
    # (empty: from the beginning). A database default, since starts insert by hand.
    forked_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    forked_from_step = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        # The dashboard's own, for operators who are not staff (durable.web.access); with a
        # payload codec, only users with view_payloads see payloads decoded in the
        # dashboard and the admin, others see "encrypted".
        permissions = [
            ("view_dashboard", "Can view the workflow dashboard"),
            ("operate", "Can start, cancel, retry and resume workflows and send them events"),
            ("view_payloads", "Can view payloads (input, context, results, events)"),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="durable_exec_status_idx"),
            models.Index(
                fields=["workflow_name", "status", "-created_at"], name="durable_exec_wf_idx"
            ),
            models.Index(fields=["-created_at"], name="durable_exec_created_idx"),
            models.Index(fields=["workflow_name", "completed_at"], name="durable_exec_metrics_idx"),
            models.Index(fields=["current_step"], name="durable_exec_step_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_name} {self.workflow_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class StepExecution(models.Model):
    """One attempt of one step (for foreach items and loop iterations: one per run)."""

    # No index of its own: durable_step_attempt_unique starts with it, and every attempt row
    # written would pay for a second one.
    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="steps", db_index=False
    )
    step = models.CharField(max_length=200)
    # Which run of the step: foreach item / loop iteration; empty for a step that runs once.
    scope_key = models.CharField(max_length=500, blank=True, default="")
    kind = models.CharField(max_length=16, default="step")  # step | compensate
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    input = PayloadField(null=True, blank=True)
    output = PayloadField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    logs = models.JSONField(default=list, blank=True)
    worker_id = models.CharField(max_length=200, blank=True, default="")
    # What a running attempt last reported through `ctx.progress(done, total)`.
    progress = models.JSONField(null=True, blank=True)
    # The root context when the first attempt of a run's first scope (first foreach item,
    # first loop iteration) was claimed; what `durable.retry(from_step=...)` restarts from.
    context_before = PayloadField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A checkpoint is written once: the same run and attempt cannot be recorded twice.
            models.UniqueConstraint(
                fields=["execution", "step", "scope_key", "kind", "attempt"],
                name="durable_step_attempt_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.step} #{self.attempt} ({self.status})"


class PendingInput(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        COMPLETED = "completed"
        TIMEOUT = "timeout"
        CANCELLED = "cancelled"

    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="pending_inputs"
    )
    input_name = models.CharField(max_length=200)
    step_name = models.CharField(max_length=200)
    # Which run of the step asked (foreach item / loop iteration) and which of its waits.
    scope_key = models.CharField(max_length=500, blank=True, default="")
    wait_index = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=32, default="free_text")
    prompt = models.TextField(blank=True, default="")
    fields = models.JSONField(default=list, blank=True)
    choices = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response = PayloadField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        permissions = [("respond_pendinginput", "Can respond to pending inputs")]
        indexes = [
            models.Index(fields=["status", "timeout_at"], name="durable_input_status_idx"),
            models.Index(
                fields=["execution", "input_name", "status"], name="durable_input_lookup_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.input_name} ({self.status})"


class ScheduledWorkflow(models.Model):
    """A cron schedule. Rows with `source="code"` mirror a workflow class's `cron` attribute
    and are kept in sync by `durable.scheduler.schedule_all_crons()`."""

    class CatchUp(models.TextChoices):
        SKIP = "skip"  # ticks missed while no scheduler ran are dropped
        RUN_ONCE = "run_once"  # one run stands for all of them

    class Source(models.TextChoices):
        CODE = "code"
        MANUAL = "manual"

    class Overlap(models.TextChoices):
        ALLOW = "allow"  # a tick starts its run whatever earlier runs still do
        SKIP = "skip"  # a tick whose earlier run is unfinished starts nothing
        CANCEL_PREVIOUS = "cancel_previous"  # it cancels the unfinished runs, then starts

    name = models.CharField(max_length=200, unique=True)
    workflow_name = models.CharField(max_length=200)
    cron_expression = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    input = PayloadField(default=dict, blank=True)
    queue = models.CharField(max_length=100, default="default")
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # Beyond the contract.
    catch_up = models.CharField(max_length=16, choices=CatchUp.choices, default=CatchUp.SKIP)
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.ALLOW)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    # Set when the class attribute behind a code schedule disappeared (the row is disabled).
    removed_from_code_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="durable_sched_due_idx")]

    def __str__(self) -> str:
        return self.name


class ScheduledRun(models.Model):
    """One fired tick of a schedule. The unique (schedule, fire_time) pair is what makes a
    tick fire once however many schedulers run: it is inserted in the transaction that
    starts the workflow."""

    schedule = models.ForeignKey(ScheduledWorkflow, on_delete=models.CASCADE, related_name="runs")
    fire_time = models.DateTimeField()
    workflow_id = models.CharField(max_length=64)
    # True for the one run a `run_once` schedule makes for ticks missed while no scheduler ran.
    caught_up = models.BooleanField(default=False)
    fired_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fire_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "fire_time"], name="durable_sched_run_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.fire_time.isoformat()}"


class FanoutBranch(models.Model):
    """One branch of an open parallel/foreach fan-out: a foreach item still waiting for its
    turn (`item`), and, once the branch finished, the context changes it made (`ops`),
    merged in branch order at the join. Rows go when the fan-out joins or the execution
    ends."""

    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The fan-out's key (its header's "key" in WorkflowExecution.fanouts).
    fanout = models.BigIntegerField()
    index = models.PositiveIntegerField()
    item = PayloadField(null=True, blank=True)
    ops = PayloadField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "fanout", "index"], name="durable_fanout_branch_unique"
            )
        ]

    def __str__(self) -> str:
        return f"branch {self.index} of fan-out {self.fanout}"


class TaskStatus(models.TextChoices):
    READY = "ready"
    CLAIMED = "claimed"
    # Parked on a wait: claimable again at run_at (its deadline), or at once when woken.
    WAITING = "waiting"
    # Held while its execution needs attention (its position is gone from the code).
    PARKED = "parked"
    # Its execution waits for a concurrency slot (durable.store.flowcontrol); never claimed.
    HELD = "held"


CLAIMABLE_TASK_STATUSES = (TaskStatus.READY, TaskStatus.WAITING)


class Task(models.Model):
    """A unit of ready work: run one step (or compensation) of one execution.

    A row exists from the moment the step is due until its outcome is checkpointed; the
    checkpoint deletes it in the same transaction. `lease_token` fences: a worker may only
    commit while its token is still on the row.
    """

    execution = models.ForeignKey(WorkflowExecution, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=16, default="step")  # step | compensate
    step = models.CharField(max_length=200)
    token = PayloadField(default=dict)
    queue = models.CharField(max_length=100)
    priority = models.IntegerField(default=0)
    run_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.READY)
    attempt = models.PositiveIntegerField(default=1)
    claims = models.PositiveIntegerField(default=0)
    # Leases that expired on this task, and the workers that held them (newest last): a
    # worker gone since (killed, out of memory) counts towards MAX_LEASE_EXPIRIES; one that
    # is still alive only lapsed (busy, or cut off from the database).
    expiries = models.PositiveIntegerField(default=0)
    lost_by = models.JSONField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    leased_by = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The wait a parked step is on (durable.flow.waits.WaitSpec as JSON), else null.
    wait = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Not a column: whether the claim that took the task saw unconsumed events and child
    # workflows of its execution (see durable.engine.waits.StepWaits).
    claim_saw: tuple[bool, bool] = (False, False)

    class Meta:
        indexes = [
            # Claiming: due work per queue, highest priority first, then oldest due.
            models.Index(
                fields=["queue", "-priority", "run_at", "id"],
                condition=Q(status__in=["ready", "waiting"]),
                name="durable_task_ready_idx",
            ),
            # The next due time an idle worker sleeps until: one short index scan per queue,
            # however many tasks are parked far in the future.
            models.Index(
                fields=["queue", "run_at"],
                condition=Q(status__in=["ready", "waiting"]),
                name="durable_task_due_idx",
            ),
            # Taking over work whose worker stopped heartbeating.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="claimed"),
                name="durable_task_lease_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.step} of {self.execution_id} ({self.status})"


class StepCode(models.Model):
    """What the workers last ran of a workflow's steps: per step a hash of its source and
    the `ctx.patched` ids in it. `durable_deploy_check` compares new code against it."""

    workflow_name = models.CharField(max_length=200, primary_key=True)
    steps = models.JSONField(default=dict)
    recorded_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.workflow_name


class WorkerState(models.Model):
    """A worker process, as long as it runs and for a while after: it renews `seen_at` with
    its leases, so an expired lease tells whether its holder is gone or was only late."""

    worker_id = models.CharField(max_length=200, primary_key=True)
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    queues = models.JSONField(default=dict, blank=True)  # name -> concurrency
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.worker_id


class QueueState(models.Model):
    """Run-time state of a queue shared by all workers (pausing)."""

    name = models.CharField(max_length=100, primary_key=True)
    paused = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}{' (paused)' if self.paused else ''}"


class BusPayload(models.Model):
    """A message too large for its bus transport; the bus publishes a reference to it."""

    topic = models.CharField(max_length=255)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="durable_buspayload_created_idx")]

    def __str__(self) -> str:
        return f"payload {self.pk} of {self.topic}"


class WorkflowEvent(models.Model):
    """An event sent to an execution; consumed by the first wait_for_event it matches."""

    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="events"
    )
    name = models.CharField(max_length=200)
    payload = PayloadField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    consumed_by = models.CharField(max_length=700, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["execution", "name"],
                condition=Q(consumed_at__isnull=True),
                name="durable_event_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} -> {self.execution_id}"


class OperatorAction(models.Model):
    """What a person did to an execution (cancel, retry, resume, send an event, start), and
    who: the execution page's history shows these beside what the engine recorded."""

    class Action(models.TextChoices):
        STARTED = "started"
        CANCELLED = "cancelled"
        RETRIED = "retried"
        RESUMED = "resumed"
        SENT_EVENT = "sent_event"

    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="operator_actions"
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The actor's username when it acted: kept when the user is deleted.
    actor_name = models.CharField(max_length=150, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["execution", "id"], name="durable_opaction_exec_idx")]

    def __str__(self) -> str:
        return f"{self.actor_name or 'someone'} {self.action} {self.execution_id}"


# -- Flow control (durable.store.flowcontrol): concurrency keys, rate limits, debounce. --


class FlowKey(models.Model):
    """One row per flow-control scope (`concurrency:<workflow>:<key>`, `rate:queue:<name>`,
    ...). Starts of one scope lock it, so limits hold across worker processes."""

    scope = models.CharField(max_length=255, unique=True)
    # Concurrency: how many executions of the scope may hold a slot at once.
    limit = models.PositiveIntegerField(null=True, blank=True)
    # Rate limits: when the next start may run (GCRA's theoretical arrival time).
    next_at = models.DateTimeField(null=True, blank=True)
    # Debounce: the execution a start with this key joins while it has not begun running.
    execution = models.ForeignKey(
        WorkflowExecution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.scope


class FlowSlot(models.Model):
    """An unfinished execution of a workflow with a concurrency key. `admitted` ones hold
    a slot; the others wait (their tasks are `held`) and are admitted oldest first."""

    execution = models.OneToOneField(
        WorkflowExecution, on_delete=models.CASCADE, related_name="flow_slot"
    )
    scope = models.CharField(max_length=255)
    admitted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["scope", "admitted", "id"], name="durable_flowslot_idx")]

    def __str__(self) -> str:
        return f"{self.scope} ({'admitted' if self.admitted else 'waiting'})"
