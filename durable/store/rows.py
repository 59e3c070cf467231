"""Plain records the store's backends read and write: leases, queue heads, attempt rows.

Both backends (durable.store.backend) take and return these, so the checkpoint and the
claims say what to write once, and each backend says how.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from durable.models import Task, TaskStatus, WorkflowExecution


@dataclass(frozen=True)
class Lease:
    """A claim's lease: who holds a task, under which token, until when."""

    token: uuid.UUID
    worker_id: str
    expires_at: datetime
    queue: str

    def columns(self) -> dict[str, Any]:
        """The task columns that say a task is claimed under this lease (the one place a
        lease is stamped: claims, chained tasks and broker claims all write these)."""
        return {
            "status": TaskStatus.CLAIMED,
            "lease_token": self.token,
            "leased_by": self.worker_id,
            "lease_expires_at": self.expires_at,
        }


UNLEASED: dict[str, Any] = {"lease_token": None, "leased_by": "", "lease_expires_at": None}


@dataclass(frozen=True)
class QueueHead:
    paused: bool
    top_priority: int | None  # of the tasks due now; None: none is

    def yields(self, priority: int) -> bool:
        """Whether work of `priority` must go back to the queue instead of being chained:
        the queue is paused, or a task of higher priority is due on it."""
        return self.paused or (self.top_priority is not None and self.top_priority > priority)


@dataclass(frozen=True)
class AttemptKey:
    """Which StepExecution row records an attempt."""

    execution_id: int
    step: str
    scope_key: str
    kind: str
    attempt: int


@dataclass(frozen=True)
class AttemptStart:
    """A running attempt's row, inserted (or reset) as its task is claimed."""

    key: AttemptKey
    input: Any
    context_before: Any


@dataclass(frozen=True)
class AttemptEnd:
    """How an attempt ended: its row's final columns."""

    key: AttemptKey
    status: str
    duration_ms: int
    output: Any = None
    error: dict[str, Any] | None = None
    logs: list[dict[str, Any]] | None = None  # None: keep what the row has


# A FanoutBranch row: (execution id, fan-out key, index, parked item, finished ops).
BranchRow = tuple[int, int, int, Any, Any]


@dataclass
class NewExecution:
    """An execution to insert (durable.store.starts): its row's first values."""

    workflow_id: str
    module: str
    name: str
    queue: str
    priority: int
    input: Any
    context: Any
    fanouts: Any
    current_step: str
    scheduled_at: datetime | None
    idempotency_key: str | None
    deadline_at: datetime | None
    parent_id: int | None
    version: str
    fingerprint: str
    trace_context: dict[str, str] | None = None  # W3C, of the caller (durable.telemetry)
    pk: int | None = None  # once inserted


@dataclass
class NewTask:
    """A first task of an execution to insert (durable.store.starts)."""

    workflow_id: str
    step: str
    token: dict[str, Any]
    queue: str
    priority: int
    run_at: datetime
    id: int | None = None  # once inserted

    def as_task(self, execution: WorkflowExecution) -> Task:
        """The task row to insert by the ORM (where no statement of ours inserts it)."""
        return Task(
            execution=execution,
            kind="step",
            step=self.step,
            token=self.token,
            queue=self.queue,
            priority=self.priority,
            run_at=self.run_at,
        )
