"""An execution's history, oldest first: what the engine recorded (the run's start and end,
each attempt's start and end with its error, inputs asked for and answered, by whom,
events received and consumed) and what people did to it (`OperatorAction`: started,
cancelled, retried, resumed, sent an event; recorded by `record`).

Nothing here is written on the engine's hot path: the engine's part is read from the rows
it keeps anyway (attempts, pending inputs, events); only operators' actions add a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from durable.conf import durable_settings
from durable.models import (
    OperatorAction,
    PendingInput,
    StepExecution,
    WorkflowEvent,
    WorkflowExecution,
)
from durable.web.presenters import ENCRYPTED, error_text
from durable.web.timeline import duration_text

# The newest entries shown; older ones are counted, not listed.
LIMIT = 500


@dataclass(frozen=True)
class Entry:
    key: str  # stable across reads: the page's element id is h-<key>
    at: datetime
    kind: str  # run | attempt | retry | input | event | operator
    text: str
    actor: str = ""
    status: str = ""
    detail: Any = None
    offset: str = ""  # since the run was created


@dataclass
class ExecutionHistory:
    entries: list[Entry] = field(default_factory=list)
    hidden: int = 0


def actor_name(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return str(user.get_username())[:150]


def record(execution: WorkflowExecution, action: str, user: Any, **detail: Any) -> None:
    """Remember that `user` did `action` (an `OperatorAction.Action`) to `execution`."""
    OperatorAction.objects.using(durable_settings.DATABASE).create(
        execution=execution,
        action=OperatorAction.Action(action),
        actor=user if getattr(user, "is_authenticated", False) else None,
        actor_name=actor_name(user),
        detail=detail,
    )


def _operator_text(action: OperatorAction) -> str:
    detail = action.detail or {}
    if action.action == OperatorAction.Action.CANCELLED:
        return "Cancelled" + (f": {detail['reason']}" if detail.get("reason") else "")
    if action.action == OperatorAction.Action.RETRIED:
        return f"Retried from {detail.get('from_step') or 'the failed step'}" + (
            f" (it was {detail['previous_status']})" if detail.get("previous_status") else ""
        )
    if action.action == OperatorAction.Action.RESUMED:
        return "Resumed"
    if action.action == OperatorAction.Action.SENT_EVENT:
        return f"Sent event {detail.get('event', '')!r}"
    return "Started the run"


def _attempt_entries(row: StepExecution) -> list[Entry]:
    scope = f" [{row.scope_key}]" if row.scope_key else ""
    what = f"{'Compensation ' if row.kind == 'compensate' else ''}{row.step}{scope}"
    retry = row.attempt > 1 and row.kind == "step"
    entries = []
    if row.started_at is not None:
        text = f"{what}: attempt {row.attempt} started"
        text += " (a retry)" if retry else ""
        text += f" on {row.worker_id}" if row.worker_id else ""
        entries.append(Entry(f"a{row.pk}-s", row.started_at, "retry" if retry else "attempt", text))
    if row.completed_at is not None:
        text = f"{what}: attempt {row.attempt} {row.status}"
        if row.duration_ms is not None:
            text += f" after {duration_text(row.duration_ms / 1000)}"
        if row.error:
            text += f": {error_text(row.error)}"
        key = f"a{row.pk}-e{_ms(row.completed_at)}-{row.status}"
        entries.append(Entry(key, row.completed_at, "attempt", text, status=row.status))
    return entries


def _input_entries(pending: PendingInput, users: dict[int, str]) -> list[Entry]:
    entries = [
        Entry(
            f"i{pending.pk}-a",
            pending.created_at,
            "input",
            f"Asked for input {pending.input_name!r} ({pending.step_name})",
            status="waiting",
        )
    ]
    if pending.completed_at is not None:
        status = str(pending.status)
        if status == PendingInput.Status.COMPLETED:
            who = users.get(pending.responded_by_id or 0, "")
            text = f"Input {pending.input_name!r} answered" + (f" by {who}" if who else "")
            entries.append(
                Entry(
                    f"i{pending.pk}-r",
                    pending.completed_at,
                    "input",
                    text,
                    actor=who,
                    status="completed",
                    detail=pending.response,
                )
            )
        else:
            entries.append(
                Entry(
                    f"i{pending.pk}-r",
                    pending.completed_at,
                    "input",
                    f"Input {pending.input_name!r}: {status}",
                    status=status,
                )
            )
    return entries


def _event_entries(event: WorkflowEvent) -> list[Entry]:
    entries = [
        Entry(
            f"e{event.pk}",
            event.created_at,
            "event",
            f"Event {event.name!r} received",
            detail=event.payload,
        )
    ]
    if event.consumed_at is not None:
        entries.append(
            Entry(f"e{event.pk}-c", event.consumed_at, "event", f"Event {event.name!r} consumed")
        )
    return entries


def history(
    execution: WorkflowExecution,
    rows: list[StepExecution] | None = None,
    *,
    payloads: bool = True,
) -> ExecutionHistory:
    """The execution's history, oldest first (the newest LIMIT entries). Without
    `payloads` (a codec, and a user without durable.view_payloads) the data of entries
    (inputs, events, answers) reads "encrypted"."""
    using = durable_settings.DATABASE
    if rows is None:
        rows = list(StepExecution.objects.using(using).filter(execution=execution))
    entries = [Entry("x-created", execution.created_at, "run", "Created", detail=execution.input)]
    if execution.started_at is not None:
        entries.append(Entry("x-started", execution.started_at, "run", "Started running"))
    for row in rows:
        entries += _attempt_entries(row)
    inputs = list(PendingInput.objects.using(using).filter(execution=execution))
    user_ids = {p.responded_by_id for p in inputs if p.responded_by_id is not None}
    users = _usernames(user_ids)
    for pending in inputs:
        entries += _input_entries(pending, users)
    for event in WorkflowEvent.objects.using(using).filter(execution=execution):
        entries += _event_entries(event)
    for action in OperatorAction.objects.using(using).filter(execution=execution):
        entries.append(
            Entry(
                f"o{action.pk}",
                action.created_at,
                "operator",
                _operator_text(action),
                actor=action.actor_name,
            )
        )
    if execution.is_finished and execution.completed_at is not None:
        text = str(execution.status).replace("_", " ").capitalize()
        if execution.error:
            text += f": {error_text(execution.error)}"
        # Keyed by its time: after a retry, the next end is a new entry.
        key = f"x-end-{_ms(execution.completed_at)}"
        entries.append(Entry(key, execution.completed_at, "run", text, status=execution.status))
    entries.sort(key=lambda e: e.at)
    hidden = max(0, len(entries) - LIMIT)
    begin = execution.created_at
    shown = [
        Entry(
            **{
                **e.__dict__,
                "offset": "+" + duration_text((e.at - begin).total_seconds()),
                "detail": e.detail if payloads or e.detail is None else ENCRYPTED,
            }
        )
        for e in entries[hidden:]
    ]
    return ExecutionHistory(shown, hidden)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _usernames(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    model = get_user_model()
    return {
        pk: str(name)
        for pk, name in model._default_manager.filter(pk__in=ids).values_list(
            "pk", model.USERNAME_FIELD
        )
    }
