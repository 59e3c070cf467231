"""The public Python API: start workflows, look them up, control them.

Every call validates its arguments before writing anything, and raises a clear error
(`WorkflowNotFound`, `ExecutionNotFound`, `InvalidTransition`, `TypeError`/`ValueError`)
instead of half-doing the work.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from durable import arguments
from durable.conf import durable_settings
from durable.dsl import payloads, registry
from durable.dsl.limits import check_keys
from durable.dsl.workflow import MAX_TRIGGER_LENGTH
from durable.exceptions import ExecutionNotFound, InvalidTransition
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    PendingInput,
    StepExecution,
    WorkflowExecution,
)
from durable.serialization import normalize
from durable.store import debounce, deploys, executions, queries, restarts, starts, waits

PERIODS = {
    "last_hour": timedelta(hours=1),
    "last_24_hours": timedelta(hours=24),
    "last_7_days": timedelta(days=7),
    "last_30_days": timedelta(days=30),
    "all_time": None,
}

WorkflowRef = type | str


# A Workflow subclass or a registered workflow name -> its definition.
resolve_workflow = registry.resolve


def _using() -> str:
    return str(durable_settings.DATABASE)


def _check_queue(queue: str) -> None:
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"queue must be a non-empty string, got {queue!r}")
    if queue not in durable_settings.queue_names():
        raise ValueError(
            f"queue {queue!r} is not configured in DURABLE['QUEUES'] "
            f"(configured: {', '.join(durable_settings.queue_names())}); no worker would run it"
        )


def start(
    workflow: Any,
    input: Mapping[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int = 0,
    scheduled_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Start a workflow and return its workflow id. The same idempotency key returns the
    same id without starting anything."""
    return _start(
        workflow,
        [input if input is not None else {}],
        ["input"],
        queue=queue,
        priority=priority,
        scheduled_at=scheduled_at,
        idempotency_key=idempotency_key,
    )[0]


def start_many(
    workflow: Any,
    inputs: Iterable[Mapping[str, Any]],
    *,
    queue: str | None = None,
    priority: int = 0,
    scheduled_at: datetime | None = None,
    idempotency_key: str | Callable[[Mapping[str, Any]], str | None] | None = None,
) -> list[str]:
    """Start one execution of `workflow` per input, in one transaction (one statement on
    PostgreSQL); return their workflow ids in input order. `idempotency_key` may be a
    function of the input: an input whose key is known already (or given twice) returns
    that execution's id and starts nothing. Every input is checked before anything is
    written: one bad input starts none."""
    if isinstance(inputs, Mapping | str | bytes):
        raise TypeError(
            f"inputs must be a list of dicts (one per execution), got {type(inputs).__name__}"
        )
    values = list(inputs)
    return _start(
        workflow,
        values,
        [f"inputs[{index}]" for index in range(len(values))],
        queue=queue,
        priority=priority,
        scheduled_at=scheduled_at,
        idempotency_key=idempotency_key,
    )


def _start(
    workflow: Any,
    inputs: list[Any],
    labels: list[str],
    *,
    queue: str | None,
    priority: int,
    scheduled_at: datetime | None,
    idempotency_key: str | Callable[[Mapping[str, Any]], str | None] | None,
) -> list[str]:
    definition = resolve_workflow(workflow)
    data = [
        _checked_input(definition, value, label)
        for value, label in zip(inputs, labels, strict=True)
    ]
    if queue is not None:
        _check_queue(queue)
    priority = arguments.priority(priority)
    if scheduled_at is not None:
        if not isinstance(scheduled_at, datetime):
            raise TypeError(f"scheduled_at must be a datetime, got {scheduled_at!r}")
        if timezone.is_naive(scheduled_at):
            raise ValueError("scheduled_at must be timezone-aware (e.g. tzinfo=UTC)")
    keys = [_key_of(idempotency_key, value) for value in data]
    if definition.flow is not None and definition.flow.debounce is not None:
        if scheduled_at is not None or any(key is not None for key in keys):
            raise ValueError(
                f"workflow {definition.name!r} is debounced: its start time is the end of the "
                "burst and the burst shares one id, so scheduled_at and idempotency_key "
                "cannot be given"
            )
        return [
            debounce.start_debounced(
                definition, value, using=_using(), queue=queue, priority=priority
            ).workflow_id
            for value in data
        ]
    return starts.start_executions(
        definition,
        [
            starts.Start(
                value,
                queue=queue,
                priority=priority,
                scheduled_at=scheduled_at,
                idempotency_key=key,
            )
            for value, key in zip(data, keys, strict=True)
        ],
        using=_using(),
    )


def publish(
    name: str, payload: Mapping[str, Any] | None = None, idempotency_key: str | None = None
) -> list[str]:
    """Start one run of every workflow whose class lists `name` in its `triggers`, with
    `payload` as its input, in one transaction; return their ids (by workflow name). The
    same `idempotency_key` again returns the same ids and starts nothing. No workflow
    listens: an empty list. Every workflow's input is checked before anything starts."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TRIGGER_LENGTH:
        raise ValueError(
            f"event name must be a string of 1 to {MAX_TRIGGER_LENGTH} characters, got {name!r}"
        )
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255
    ):
        raise ValueError(
            f"idempotency_key must be a string of 1 to 255 characters, got {idempotency_key!r}"
        )
    definitions = registry.triggered_by(name)
    planned = [
        (
            definition,
            starts.Start(
                _checked_input(definition, payload if payload is not None else {}, "payload"),
                idempotency_key=_publish_key(definition.name, name, idempotency_key),
            ),
        )
        for definition in definitions
    ]
    with transaction.atomic(using=_using()):
        return [
            starts.start_executions(definition, [start], using=_using())[0]
            for definition, start in planned
        ]


def _publish_key(workflow: str, event: str, key: str | None) -> str | None:
    """The run's own idempotency key: one per workflow per publish key (a key belongs to
    one workflow's execution)."""
    if key is None:
        return None
    readable = f"publish:{event}:{key}:{workflow}"
    if len(readable) <= 255:
        return readable
    digest = hashlib.sha256("\0".join((event, key, workflow)).encode()).hexdigest()
    return f"publish:{digest}"


def _checked_input(definition: Any, value: Any, label: str) -> dict[str, Any]:
    if payloads.is_model_instance(value):
        # A dataclass or pydantic model is stored as the JSON object of its fields.
        value = normalize(value, label)
    if not isinstance(value, Mapping):
        raise TypeError(f"{label} must be a dict (a JSON object), got {type(value).__name__}")
    data: dict[str, Any] = normalize(dict(value), label)
    if definition.input_type is not None:
        try:
            payloads.load(definition.input_type, data, label)
        except payloads.PayloadError as exc:
            raise ValidationError(
                f"{exc} (workflow {definition.name!r} takes {definition.input_type.__name__})"
            ) from None
    check_keys(definition.name, definition.flow, data)
    return data


def _key_of(
    idempotency_key: str | Callable[[Mapping[str, Any]], str | None] | None, value: Any
) -> str | None:
    key = idempotency_key(value) if callable(idempotency_key) else idempotency_key
    return arguments.idempotency_key(key)


def get_execution(workflow_id: str, *, include_logs: bool = False) -> WorkflowExecution:
    workflow_id = arguments.workflow_id(workflow_id)
    qs = WorkflowExecution.objects.using(_using())
    if include_logs:
        qs = qs.prefetch_related("steps")
    try:
        return qs.get(workflow_id=workflow_id)
    except WorkflowExecution.DoesNotExist:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}") from None


def _check_status(status: str | None) -> None:
    if status is not None and status not in ExecutionStatus.values:
        raise ValueError(
            f"unknown status {status!r}; expected one of {', '.join(ExecutionStatus.values)}"
        )


def _filtered(workflow: Any, status: str | None) -> QuerySet[WorkflowExecution]:
    _check_status(status)
    qs = WorkflowExecution.objects.using(_using()).all()
    if workflow is not None:
        qs = qs.filter(workflow_name=resolve_workflow(workflow).name)
    if status is not None:
        qs = qs.filter(status=status)
    return qs


def list_executions(
    workflow: Any = None,
    status: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> QuerySet[WorkflowExecution]:
    """Newest first."""
    limit = None if limit is None else arguments.row_count(limit, "limit")
    offset = arguments.row_count(offset, "offset")
    qs = _filtered(workflow, status).order_by("-created_at", "-id")
    return qs[offset : offset + limit] if limit is not None else qs[offset:]


def find_executions(
    workflow: Any = None,
    *,
    current_step: str | None = None,
    status: str | None = None,
    time_range: tuple[datetime | None, datetime | None] | None = None,
) -> QuerySet[WorkflowExecution]:
    """Executions by position and creation time; `time_range` is (start, end), either open."""
    current_step = arguments.optional_text(current_step, "current_step", max_length=200)
    qs = _filtered(workflow, status)
    if current_step is not None:
        qs = qs.filter(current_step=current_step)
    if time_range is not None:
        begin, end = _check_time_range(time_range)
        if begin is not None:
            qs = qs.filter(created_at__gte=begin)
        if end is not None:
            qs = qs.filter(created_at__lt=end)
    return qs.order_by("-created_at", "-id")


def _check_time_range(time_range: Any) -> tuple[datetime | None, datetime | None]:
    if not isinstance(time_range, tuple | list) or len(time_range) != 2:
        raise TypeError(f"time_range must be a (start, end) pair, got {time_range!r}")
    for bound in time_range:
        if bound is None:
            continue
        if not isinstance(bound, datetime):
            raise TypeError(f"time_range bounds must be datetimes or None, got {bound!r}")
        if timezone.is_naive(bound):
            raise ValueError("time_range bounds must be timezone-aware (e.g. tzinfo=UTC)")
    return time_range[0], time_range[1]


def get_metrics(workflow: Any = None, period: str | timedelta = "last_24_hours") -> dict[str, Any]:
    """{"total_executions", "successful", "failed", "success_rate", "avg_duration_ms",
    "p95_duration_ms"} over executions created in `period`."""
    if isinstance(period, timedelta):
        window: timedelta | None = period
    elif isinstance(period, str) and period in PERIODS:
        window = PERIODS[period]
    else:
        raise ValueError(
            f"unknown period {period!r}; use a timedelta or one of {', '.join(PERIODS)}"
        )
    name = resolve_workflow(workflow).name if workflow is not None else None
    since = timezone.now() - window if window is not None else None
    return queries.execution_metrics(_using(), name, since)


def cancel(workflow_id: str, reason: str = "cancelled") -> None:
    """Cancel an unfinished execution: queued steps are dropped, running ones discarded."""
    executions.cancel_execution(
        arguments.workflow_id(workflow_id), arguments.reason(reason), using=_using()
    )


def send_event(workflow_id: str, event: str, payload: Any = None) -> None:
    """Deliver an event to an execution. A step waiting for it wakes; if none waits yet, the
    event is kept until a `wait_for_event` of that name (and filter) consumes it."""
    workflow_id = arguments.workflow_id(workflow_id)
    name = arguments.event_name(event)
    data = normalize(payload, "payload")
    waits.send_event(workflow_id, name, data, using=_using())


def provide_input(
    workflow_id: str, input_name: str, response: Any, *, user: Any = None
) -> PendingInput:
    """Answer a pending `wait_for_input`. The response is validated against the input's
    schema (a `django.core.exceptions.ValidationError` naming the field changes nothing);
    the first valid response wins and a second one is refused (`InvalidTransition`)."""
    workflow_id = arguments.workflow_id(workflow_id)
    name = arguments.input_name(input_name)
    data = normalize(response, "response")
    user_id = getattr(user, "pk", None) if user is not None else None
    return waits.provide_input(workflow_id, name, data, user_id=user_id, using=_using())


def resume(workflow_id: str, data: Mapping[str, Any] | None = None) -> None:
    """Wake a waiting execution now: the waits it is parked on return `data`, and `data` is
    merged into its context. An execution that needs attention (a deploy removed its
    position) runs again if its position exists now; else InvalidTransition says what is
    still missing."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TypeError(f"resume data must be a dict, got {type(data).__name__}")
    status = get_execution(workflow_id).status
    if status == ExecutionStatus.NEEDS_ATTENTION:
        if data:
            raise ValueError("an execution that needs attention resumes without data")
        _revive(str(workflow_id))
        return
    waits.resume(str(workflow_id), normalize(dict(data), "data"), using=_using())


def _revive(workflow_id: str) -> None:
    problems = deploys.revive(workflow_id, using=_using())
    if problems:
        raise InvalidTransition(
            f"execution {workflow_id} still needs attention: "
            + "; ".join(f"{p.position}: {p.message}" for p in problems)
        )


def retry(workflow_id: str, from_step: str | None = None) -> None:
    """Re-run a finished execution from `from_step` (a root-level step or block; a step
    inside a block restarts its root-level block) with the context saved before it.
    Default: the step that failed. Unknown id, unfinished execution, unknown step or no
    saved context -> an error, and nothing changes."""
    workflow_id = arguments.workflow_id(workflow_id)
    if from_step is not None and not isinstance(from_step, str):
        raise TypeError(f"from_step must be a step name, got {from_step!r}")
    # The re-run's tasks are announced (and published to a broker) by the store.
    restarts.retry_execution(workflow_id, from_step, using=_using())


def fork(workflow_id: str, from_step: str | None = None) -> str:
    """Start a new execution of the same workflow, linked to `workflow_id` (its
    `forked_from`), and return its id. It starts at `from_step` (a root-level step or
    block; a step inside a block starts its root-level block) with the context saved
    before that step and the decisions taken before it; None starts from the beginning.
    Input, queue and priority are the source's; the source is left as it is. Unknown id,
    unknown step or a step the source never reached -> an error, and nothing starts."""
    if from_step is not None and not isinstance(from_step, str):
        raise TypeError(f"from_step must be a step name, got {from_step!r}")
    definition, start = restarts.fork_start(str(workflow_id), from_step, using=_using())
    return starts.start_executions(definition, [start], using=_using())[0]


def _log_entries(rows: Iterable[StepExecution]) -> list[dict[str, Any]]:
    return [
        {
            **entry,
            "step": row.step,
            "attempt": row.attempt,
            "scope_key": row.scope_key,
            "kind": row.kind,
        }
        for row in rows
        for entry in (row.logs or [])
    ]


def get_step_logs(workflow_id: str, step: str | None = None) -> list[dict[str, Any]]:
    """Captured log lines of one step's attempts (or of every step), oldest first; each
    entry names its step, attempt and run (`scope_key`)."""
    execution = get_execution(workflow_id)
    rows = execution.steps.using(_using()).order_by("id")
    if step is not None:
        if not isinstance(step, str) or not step:
            raise ValueError(f"step must be a step name, got {step!r}")
        names = {node.name for node in resolve_workflow(execution.workflow_name).steps()}
        if step not in names:
            raise ValueError(f"workflow {execution.workflow_name!r} has no step {step!r}")
        rows = rows.filter(step=step)
    return _log_entries(rows)


def get_execution_logs(workflow_id: str) -> list[dict[str, Any]]:
    """Every captured log line of the execution, attempt by attempt."""
    return get_step_logs(workflow_id)


def stream_logs(workflow_id: str, *, poll_interval: float = 0.5) -> Iterator[dict[str, Any]]:
    """Yield the execution's log lines as attempts record them, until it finishes.

    A running attempt's lines are stored on its row as it goes (durable.engine.livelogs:
    about every second once it ran for a second), then completely at its checkpoint. Every
    line is yielded once, in order within its attempt; when an attempt retaken after its
    worker died starts its log over, the new lines follow."""
    execution = get_execution(workflow_id)
    # Per row: how many lines were yielded, and the last of them.
    seen: dict[int, tuple[int, dict[str, Any] | None]] = {}
    while True:
        execution.refresh_from_db(fields=["status"])
        finished = execution.status in FINISHED_STATUSES
        for row in execution.steps.using(_using()).order_by("id"):
            logs = row.logs or []
            count, last = seen.get(row.pk, (0, None))
            if count and (len(logs) < count or logs[count - 1] != last):
                # The row's lines were replaced: an attempt retaken after its worker died
                # starts over, and so does its log.
                count = 0
            if len(logs) > count:
                yield from _log_entries([_with_logs(row, logs[count:])])
                seen[row.pk] = (len(logs), logs[-1])
        if finished:
            return
        time.sleep(poll_interval)


def _with_logs(row: StepExecution, logs: list[dict[str, Any]]) -> StepExecution:
    row.logs = logs
    return row
