"""`with_execution`: a workflow's graph with the state of one execution on every node.

A step that runs many times (foreach items, loop iterations) has one run per scope key;
its state aggregates the latest attempt of each run. Blocks take their state from the
steps inside them; start and end from the execution. A running step that reported
`ctx.progress(done, total)` carries that report as `progress` ({"done", "total"}), as a
foreach block carries its items done.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from durable.conf import durable_settings
from durable.dsl.nodes import Definition, ForeachNode, Node, StepNode
from durable.exceptions import ExecutionNotFound
from durable.flow.token import Token
from durable.graph.build import generate, resolve
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    StepExecution,
    Task,
    WorkflowExecution,
)

# Statuses from which an execution still goes forward (not compensating, not finished).
_REACHABLE = frozenset(
    {
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.WAITING,
        ExecutionStatus.NEEDS_ATTENTION,
    }
)
_ACTIVE = frozenset({"running", "waiting"})
_ENDED = frozenset({"completed", "failed", "compensated", "skipped"})


def not_run_status(execution_status: str) -> str:
    """What a step or block that has not run shows: `pending` while the execution can
    still reach it (parked by a deploy included: it runs on once resumed), `skipped` once
    it cannot (finished, or compensating)."""
    return "pending" if execution_status in _REACHABLE else "skipped"


def with_execution(workflow: Any, workflow_id: str) -> dict[str, Any]:
    """`generate(workflow)` plus `execution_state` on each node and `execution` on top."""
    definition = resolve(workflow)
    using = durable_settings.DATABASE
    try:
        execution = WorkflowExecution.objects.using(using).get(workflow_id=str(workflow_id))
    except WorkflowExecution.DoesNotExist:
        raise ExecutionNotFound(f"no execution with id {workflow_id!r}") from None
    if execution.workflow_name != definition.name:
        raise ValueError(
            f"execution {workflow_id!r} runs workflow {execution.workflow_name!r}, "
            f"not {definition.name!r}"
        )
    rows = list(StepExecution.objects.using(using).filter(execution=execution).order_by("id"))
    tasks = list(
        Task.objects.using(using)
        .filter(execution=execution, kind="step")
        .values_list("step", "token")
    )
    states = _States(definition, execution, rows, tasks)
    g = generate(definition)
    for node in g["nodes"]:
        node["execution_state"] = states.node(node)
        block = definition.by_name.get(node["id"])
        if node["type"] == "foreach" and isinstance(block, ForeachNode):
            node["progress"] = states.progress(block)
        elif node["type"] == "step" and isinstance(block, StepNode):
            reported = states.reported(block.name)
            if reported is not None:
                node["progress"] = reported
    g["execution"] = {
        "workflow_id": execution.workflow_id,
        "workflow_name": execution.workflow_name,
        "status": execution.status,
        "current_step": execution.current_step,
        "started_at": _iso(execution.started_at),
        "completed_at": _iso(execution.completed_at),
        "duration_ms": execution.duration_ms,
        "error": execution.error,
    }
    return g


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def aggregate(statuses: Iterable[str]) -> str | None:
    """One status for many runs: what is happening now wins over what has happened."""
    counts = Counter(statuses)
    if not counts:
        return None
    for status in ("running", "waiting", "retrying", "failed"):
        if counts[status]:
            return status
    if counts["pending"]:
        return "running" if len(counts) > 1 else "pending"
    if counts["compensated"]:
        return "compensated"
    return "completed" if counts["completed"] else "skipped"


class _States:
    def __init__(
        self,
        definition: Definition,
        execution: WorkflowExecution,
        rows: list[StepExecution],
        tasks: list[tuple[str, Any]],
    ) -> None:
        self.definition = definition
        self.execution = execution
        # The latest attempt of each run, per step; and the compensation rows.
        self.runs: dict[str, dict[str, StepExecution]] = {}
        self.compensations: dict[str, StepExecution] = {}
        for row in rows:
            if row.kind != "step":
                self.compensations[row.step] = row
                continue
            runs = self.runs.setdefault(row.step, {})
            if row.scope_key not in runs or row.attempt >= runs[row.scope_key].attempt:
                runs[row.scope_key] = row
        # Runs with a queued task: due, or retrying after a failed attempt.
        self.queued: dict[str, set[str]] = {}
        for step, token in tasks:
            self.queued.setdefault(step, set()).add(Token.from_json(token).scope_key())
        self.not_run = not_run_status(execution.status)
        self.cache: dict[str, dict[str, Any]] = {}

    def node(self, node: dict[str, Any]) -> dict[str, Any]:
        kind = node["type"]
        if kind == "start":
            return self._start()
        if kind == "end":
            return self._end()
        if kind == "join":
            return self._join(node["block"])
        definition_node = self.definition.by_name[node["id"]]
        if isinstance(definition_node, StepNode):
            return self.step(definition_node.name)
        return self.block(definition_node)

    def _state(self, status: str, **fields: Any) -> dict[str, Any]:
        state: dict[str, Any] = {
            "status": status,
            "attempt": None,
            "duration_ms": None,
            "started_at": None,
            "completed_at": None,
            "active": status in _ACTIVE,
        }
        state.update(fields)
        return state

    def _start(self) -> dict[str, Any]:
        started = self.execution.status != ExecutionStatus.PENDING
        at = _iso(self.execution.started_at)
        return self._state("completed" if started else "pending", started_at=at, completed_at=at)

    def _end(self) -> dict[str, Any]:
        execution = self.execution
        finished = execution.status in FINISHED_STATUSES
        return self._state(
            execution.status if finished else "pending",
            duration_ms=execution.duration_ms,
            started_at=_iso(execution.started_at),
            completed_at=_iso(execution.completed_at),
        )

    def _join(self, block: str) -> dict[str, Any]:
        state = self.block(self.definition.by_name[block])
        if state["status"] == "completed":
            return self._state("completed", completed_at=state["completed_at"])
        return self._state(self.not_run)

    def step(self, name: str) -> dict[str, Any]:
        if name in self.cache:
            return self.cache[name]
        runs = self.runs.get(name, {})
        queued = self.queued.get(name, set())
        statuses = []
        for scope, row in runs.items():
            retrying = row.status == "failed" and scope in queued
            statuses.append("retrying" if retrying else row.status)
        statuses += ["pending" for scope in queued if scope not in runs]
        latest = max(runs.values(), key=lambda row: row.pk, default=None)
        status = aggregate(statuses) or self.not_run
        durations = [row.duration_ms for row in runs.values() if row.duration_ms is not None]
        starts = [row.started_at for row in runs.values() if row.started_at is not None]
        ends = [row.completed_at for row in runs.values() if row.completed_at is not None]
        state = self._state(
            status,
            attempt=latest.attempt if latest is not None else None,
            duration_ms=sum(durations) if durations else None,
            started_at=_iso(min(starts, default=None)),
            completed_at=_iso(max(ends, default=None)) if status in _ENDED else None,
            runs=len(statuses),
            counts=dict(Counter(statuses)),
        )
        compensation = self.compensations.get(name)
        if compensation is not None:
            state["compensation"] = compensation.status
        self.cache[name] = state
        return state

    def block(self, node: Node) -> dict[str, Any]:
        if node.name in self.cache:
            return self.cache[node.name]
        steps = [self.step(name) for name in _steps_under(node)]
        ran = [state for state in steps if state["runs"]]
        open_ = any(
            record.get("block") == node.name for record in self.execution.fanouts.values()
        ) or any(self.queued.get(name) for name in _steps_under(node))
        status = aggregate(state["status"] for state in ran)
        if status is None:
            status = "running" if open_ else self.not_run
        elif open_ and status in ("completed", "pending"):
            status = "running"
        starts = [state["started_at"] for state in ran if state["started_at"]]
        ends = [state["completed_at"] for state in ran if state["completed_at"]]
        started_at = min(starts, default=None)
        completed_at = max(ends, default=None) if status in _ENDED else None
        duration = None
        if started_at and completed_at:
            elapsed = datetime.fromisoformat(completed_at) - datetime.fromisoformat(started_at)
            duration = round(elapsed.total_seconds() * 1000)
        state = self._state(
            status,
            duration_ms=duration,
            started_at=started_at,
            completed_at=completed_at,
            active=any(state["active"] for state in steps),
            counts=dict(Counter(state["status"] for state in steps)),
        )
        self.cache[node.name] = state
        return state

    def reported(self, name: str) -> dict[str, Any] | None:
        """The latest `ctx.progress` report of a running attempt of step `name`."""
        running = [
            (row.pk, row.progress)
            for row in self.runs.get(name, {}).values()
            if row.status == "running" and isinstance(row.progress, dict)
        ]
        if not running:
            return None
        report = max(running, key=lambda pair: pair[0])[1]
        return {"done": report.get("done"), "total": report.get("total")}

    def progress(self, node: ForeachNode) -> dict[str, Any]:
        """Items done and in all: from the open fan-outs, else from the recorded runs."""
        records = [r for r in self.execution.fanouts.values() if r.get("block") == node.name]
        if records:
            return {
                "done": sum(int(r.get("done") or 0) for r in records),
                "total": sum(int(r.get("total", 0)) for r in records),
            }
        frame = re.compile(rf"(?:^|/)({re.escape(node.name)}(?:@.*?)?\[\d+\])(?=/|$)")
        items: dict[str, list[str]] = {}
        for name in _steps_under(node):
            for scope, row in self.runs.get(name, {}).items():
                match = frame.search(scope)
                if match:
                    items.setdefault(match.group(1), []).append(row.status)
        if not items:
            return {"done": 0, "total": None}
        if self.block(node)["status"] == "completed":
            return {"done": len(items), "total": len(items)}
        done = sum(all(status == "completed" for status in runs) for runs in items.values())
        return {"done": done, "total": len(items)}


def _steps_under(node: Node) -> list[str]:
    names = []
    for branch in node.children:
        for child in branch:
            if isinstance(child, StepNode):
                names.append(child.name)
            names += _steps_under(child)
    return names
