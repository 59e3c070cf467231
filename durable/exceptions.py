"""Every exception a Durable user can catch or raise."""

from __future__ import annotations

from collections.abc import Iterable


class DurableError(Exception):
    """Base class of Durable's own errors."""


class DefinitionError(DurableError):
    """A workflow class is invalid. Carries every problem found, not just the first."""

    def __init__(self, workflow: str, problems: Iterable[str]) -> None:
        self.workflow = workflow
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"workflow {workflow!r} is invalid:\n{lines}")

    def __reduce__(self) -> tuple[type[DefinitionError], tuple[str, list[str]]]:
        return (type(self), (self.workflow, self.problems))


class WorkflowNotFound(DurableError, LookupError):
    """No workflow is registered under that name or class."""


class ExecutionNotFound(DurableError, LookupError):
    """No execution has that workflow id."""


class InvalidTransition(DurableError):
    """The control call does not apply to the execution in its current status."""


class NonRetryable(DurableError):
    """Raise (or wrap an exception in) this in a step to fail it without further attempts."""

    def __init__(self, error: BaseException | str | None = None) -> None:
        self.error = error
        super().__init__(str(error) if error is not None else "non-retryable failure")


class WaitTimeout(DurableError):
    """A wait in a step passed its timeout with no `timeout_value` to return."""


class StepTimeout(DurableError, TimeoutError):
    """A step ran longer than its `timeout=`."""


class StepCancelled(DurableError):
    """Raised by `ctx.raise_if_cancelled()` once the attempt was asked to stop: its timeout
    passed, its execution was cancelled, or its worker gave it up (shutdown, lost lease)."""


class WorkflowTimeout(DurableError, TimeoutError):
    """The whole workflow ran past its `timeout`."""


class PendingInputNotFound(DurableError, LookupError):
    """No input of that name is pending for the execution."""


class WaitConflict(DurableError):
    """Another run consumed an event this run wanted; the run is handed back to try again."""


class WorkerLost(DurableError):
    """The workers running a step kept dying before finishing it (see MAX_LEASE_EXPIRIES)."""


class LeaseLost(DurableError):
    """A worker tried to commit work whose claim another worker has taken over."""


class ChildWorkflowFailed(DurableError):
    """`ctx.wait_for_child` found the child ended without completing (failed, compensated,
    compensation_failed or cancelled). Carries the child's id, status and error."""

    def __init__(self, workflow_id: str, status: str, error: dict[str, object] | None) -> None:
        self.workflow_id = workflow_id
        self.status = status
        self.error = error
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"child workflow {workflow_id} ended {status}{detail}")

    def __reduce__(
        self,
    ) -> tuple[type[ChildWorkflowFailed], tuple[str, str, dict[str, object] | None]]:
        return (type(self), (self.workflow_id, self.status, self.error))


class WorkflowFailed(DurableError):
    """`durable.get_result` found the execution ended without completing (failed,
    compensated, compensation_failed or cancelled). Carries its id, status and the stored
    error (`WorkflowExecution.error`: type, message, traceback...)."""

    def __init__(self, workflow_id: str, status: str, error: dict[str, object] | None) -> None:
        self.workflow_id = workflow_id
        self.status = status
        self.error = error
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"execution {workflow_id} ended {status}{detail}")

    def __reduce__(
        self,
    ) -> tuple[type[WorkflowFailed], tuple[str, str, dict[str, object] | None]]:
        return (type(self), (self.workflow_id, self.status, self.error))
