"""Bulk actions on the executions matching the list's filters: cancel (and, later, retry).

Two requests. The confirmation (GET) takes the filters, counts the eligible executions
and shows them with their ids in the form; acting (POST) takes those ids, and only those.
An execution that started matching the filters after the confirmation is not touched; one
that stopped being eligible (it finished, say) or was deleted in between is skipped and
reported. So the user acts on exactly what they confirmed, never on more.

One confirmation covers at most `LIMIT` executions, newest first; the page says when more
match, and running the action again takes the next ones.

An action is one `BulkAction` entry in `ACTIONS`: its permission, the statuses it applies
to, and the function applied to each execution id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

import durable.api
from durable.conf import durable_settings
from durable.exceptions import DurableError
from durable.models import (
    FAILED_STATUSES,
    FINISHED_STATUSES,
    ExecutionStatus,
    WorkflowExecution,
)
from durable.web import access, history

LIMIT = 500


@dataclass(frozen=True)
class BulkAction:
    name: str
    verb: str  # "Cancel": the button
    done: str  # "cancelled": the report
    permission: str
    statuses: frozenset[str]
    apply: Callable[[str, Any], None]  # (workflow id, user)
    note: str = ""  # what the action does beyond its verb, shown before confirming


def _execution(workflow_id: str) -> WorkflowExecution:
    return WorkflowExecution.objects.using(durable_settings.DATABASE).get(workflow_id=workflow_id)


def _cancel(workflow_id: str, user: Any) -> None:
    reason = f"cancelled in bulk by {user}"
    durable.api.cancel(workflow_id, reason=reason)
    history.record(_execution(workflow_id), "cancelled", user, reason=reason, bulk=True)


def _retry(workflow_id: str, user: Any) -> None:
    # From the step that failed (or was interrupted), with the context saved before it;
    # a compensated run from its first compensated step (durable.store.restarts).
    previous = _execution(workflow_id).status
    durable.api.retry(workflow_id)
    history.record(_execution(workflow_id), "retried", user, previous_status=previous, bulk=True)


ACTIONS: dict[str, BulkAction] = {
    action.name: action
    for action in (
        BulkAction(
            name="cancel",
            verb="Cancel",
            done="cancelled",
            permission=access.CANCEL_PERMISSION,
            statuses=frozenset(ExecutionStatus.values) - FINISHED_STATUSES,
            apply=_cancel,
        ),
        BulkAction(
            name="retry",
            verb="Retry",
            done="retried",
            permission=access.CANCEL_PERMISSION,
            statuses=FAILED_STATUSES | {ExecutionStatus.CANCELLED},
            apply=_retry,
            note=(
                "Failed and cancelled executions re-run from the step that failed or was "
                "interrupted. Compensated executions re-run from their first compensated "
                "step, so the work their compensations undid is done again before what "
                "failed; none can complete with that work still undone."
            ),
        ),
    )
}


def allowed(user: Any) -> list[BulkAction]:
    """The actions `user` may take, in declaration order."""
    return [a for a in ACTIONS.values() if access.allowed(user, a.permission)]


def eligible(
    action: BulkAction, matching: QuerySet[WorkflowExecution]
) -> QuerySet[WorkflowExecution]:
    return matching.filter(status__in=action.statuses)


@dataclass
class Report:
    action: BulkAction
    done: list[str] = field(default_factory=list)
    # workflow id -> why it was skipped
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"{self.action.done.capitalize()} {len(self.done)} execution"
        text += "" if len(self.done) == 1 else "s"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} that changed since the confirmation"
        return text + "."


def perform(action: BulkAction, workflow_ids: Iterable[str], user: Any) -> Report:
    """Apply `action` to each of `workflow_ids` that is still eligible; report the rest."""
    ids = list(dict.fromkeys(str(w) for w in workflow_ids))
    statuses = dict(
        WorkflowExecution.objects.using(durable_settings.DATABASE)
        .filter(workflow_id__in=ids)
        .values_list("workflow_id", "status")
    )
    report = Report(action)
    for wid in ids:
        status = statuses.get(wid)
        if status is None:
            report.skipped[wid] = "no longer exists"
        elif status not in action.statuses:
            report.skipped[wid] = f"now {status}"
        else:
            try:
                action.apply(wid, user)
            except DurableError as exc:  # changed between our read and the action
                report.skipped[wid] = str(exc)
            else:
                report.done.append(wid)
    return report
