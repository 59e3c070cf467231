"""Durable: durable, resumable workflows for Django.

The DSL names import eagerly (they never touch the ORM, so `import durable` works before
Django's app registry is ready); the API functions and the `graph` module load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from durable.dsl import (
    Retry,
    Workflow,
    case_match,
    decision,
    default,
    foreach,
    loop,
    on_decision,
    parallel,
    step,
    switch,
    when_result,
)
from durable.exceptions import (
    ChildWorkflowFailed,
    DefinitionError,
    DurableError,
    ExecutionNotFound,
    InvalidTransition,
    NonRetryable,
    PendingInputNotFound,
    StepCancelled,
    StepTimeout,
    WaitTimeout,
    WorkflowFailed,
    WorkflowNotFound,
    WorkflowTimeout,
)

if TYPE_CHECKING:
    from durable import graph
    from durable.aio import aget_execution, aprovide_input, asend_event, astart, astart_many
    from durable.api import (
        cancel,
        find_executions,
        fork,
        get_execution,
        get_execution_logs,
        get_metrics,
        get_step_logs,
        list_executions,
        provide_input,
        publish,
        resume,
        retry,
        send_event,
        start,
        start_many,
        stream_logs,
    )
    from durable.results import aget_result, get_result

_API = {
    "cancel",
    "find_executions",
    "fork",
    "get_execution",
    "get_execution_logs",
    "get_metrics",
    "get_step_logs",
    "list_executions",
    "provide_input",
    "publish",
    "resume",
    "retry",
    "send_event",
    "start",
    "start_many",
    "stream_logs",
}
# Public functions that live beside the API module, by the module that defines them.
_ELSEWHERE = {
    "aget_execution": "durable.aio",
    "aget_result": "durable.results",
    "aprovide_input": "durable.aio",
    "asend_event": "durable.aio",
    "astart": "durable.aio",
    "astart_many": "durable.aio",
    "get_result": "durable.results",
}

__all__ = [
    "ChildWorkflowFailed",
    "DefinitionError",
    "DurableError",
    "ExecutionNotFound",
    "InvalidTransition",
    "NonRetryable",
    "PendingInputNotFound",
    "Retry",
    "StepCancelled",
    "StepTimeout",
    "WaitTimeout",
    "Workflow",
    "WorkflowFailed",
    "WorkflowNotFound",
    "WorkflowTimeout",
    "aget_execution",
    "aget_result",
    "aprovide_input",
    "asend_event",
    "astart",
    "astart_many",
    "cancel",
    "case_match",
    "decision",
    "default",
    "find_executions",
    "foreach",
    "fork",
    "get_execution",
    "get_execution_logs",
    "get_metrics",
    "get_result",
    "get_step_logs",
    "graph",
    "list_executions",
    "loop",
    "on_decision",
    "parallel",
    "provide_input",
    "publish",
    "resume",
    "retry",
    "send_event",
    "start",
    "start_many",
    "step",
    "stream_logs",
    "switch",
    "when_result",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from durable import api

        return getattr(api, name)
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    if name == "graph":
        return importlib.import_module("durable.graph")
    raise AttributeError(f"module 'durable' has no attribute {name!r}")
