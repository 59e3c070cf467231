"""What the execution page shows, computed from the database: step states, timeline bars,
the graph, attempts with their logs. Shared by the views and the WebSocket consumers."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from durable.conf import durable_settings
from durable.dsl import registry
from durable.exceptions import WorkflowNotFound
from durable.graph.execution import not_run_status
from durable.models import PendingInput, StepExecution, WorkflowExecution

_CSS_SAFE_ID = re.compile(r"[\w.-]+", re.ASCII)


@dataclass
class StepState:
    name: str
    status: str = "pending"
    attempts: int = 0
    runs: int = 0
    duration_ms: int | None = None
    progress: dict[str, Any] | None = None

    @property
    def percent(self) -> int | None:
        return percent(self.progress)


@dataclass
class Bar:
    row: StepExecution
    left: float
    width: float


@dataclass
class ExecutionView:
    execution: WorkflowExecution
    steps: list[StepState]
    attempts: list[StepExecution]
    bars: list[Bar]
    graph_svg: SafeString | None
    node_style: SafeString
    pending_inputs: list[PendingInput]
    context_json: str
    # The result as JSON like the context (None when there is none), not a Python repr.
    result_json: str | None
    foreach_progress: list[tuple[str, int]]
    # Payloads are encrypted and the viewer may not see them (durable.web.access).
    payloads_hidden: bool = False


def percent(progress: dict[str, Any] | None) -> int | None:
    if not progress or not progress.get("total"):
        return None
    done, total = float(progress.get("done") or 0), float(progress["total"])
    return max(0, min(100, round(100 * done / total)))


def pretty_json(value: Any) -> str:
    """Indented JSON; the template escapes it."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _graph_module() -> Any:
    """`durable.graph` when it is installed with the functions the page uses."""
    try:
        module = importlib.import_module("durable.graph")
    except ImportError:
        return None
    wanted = ("with_execution", "to_svg")
    return module if all(hasattr(module, name) for name in wanted) else None


def step_states(execution: WorkflowExecution, rows: list[StepExecution]) -> list[StepState]:
    """One entry per step of the definition (declaration order), with its latest state."""
    try:
        names = [s.name for s in registry.get(execution.workflow_name).steps()]
    except WorkflowNotFound:
        names = []
    # Steps with no attempt yet: pending, or skipped once the run can no longer reach them
    # (the graph's rule, so the list and the graph agree).
    not_run = not_run_status(execution.status)
    states = {name: StepState(name, status=not_run) for name in names}
    for row in rows:
        if row.kind != "step":
            continue
        state = states.setdefault(row.step, StepState(row.step))
        state.status = row.status
        state.attempts = max(state.attempts, row.attempt)
        state.runs += 1 if row.attempt == 1 else 0
        state.duration_ms = row.duration_ms
        state.progress = row.progress if row.status == "running" else None
    return list(states.values())


def timeline(execution: WorkflowExecution, rows: list[StepExecution]) -> list[Bar]:
    """Gantt bars: each attempt's start and end as percentages of the run so far."""
    now = timezone.now()
    spans = [(r, r.started_at, r.completed_at or now) for r in rows if r.started_at is not None]
    if not spans:
        return []
    begin = min([execution.started_at or execution.created_at, *(s for _, s, _ in spans)])
    end = max([execution.completed_at or now, *(e for _, _, e in spans)])
    total = max((end - begin).total_seconds(), 0.001)

    def at(moment: datetime) -> float:
        return round(100 * (moment - begin).total_seconds() / total, 2)

    return [Bar(row, at(start), max(at(stop) - at(start), 0.5)) for row, start, stop in spans]


def _graph(
    execution: WorkflowExecution,
) -> tuple[SafeString | None, SafeString, list[tuple[str, int]]]:
    """The SVG (with progress bars on running steps and foreach blocks), CSS rules
    colouring its nodes by state, and foreach progress bars."""
    graph = _graph_module()
    if graph is None:
        return None, mark_safe(""), []
    try:
        workflow = registry.get(execution.workflow_name).workflow_class
    except WorkflowNotFound:
        return None, mark_safe(""), []
    g = graph.with_execution(workflow, execution.workflow_id)
    rules: list[str] = []
    progress: list[tuple[str, int]] = []
    for node in g.get("nodes", []):
        state = node.get("execution_state") or {}
        node_id = str(node.get("id", ""))
        status = str(state.get("status") or "")
        if _CSS_SAFE_ID.fullmatch(node_id) and _CSS_SAFE_ID.fullmatch(status):
            rules.append(
                f'#graph [data-node-id="{node_id}"] .shape'
                f"{{fill:var(--st-{status}-bg);stroke:var(--st-{status})}}"
            )
        value = percent(node.get("progress")) if node.get("type") == "foreach" else None
        if value is not None:
            progress.append((str(node.get("label") or node_id), value))
    # to_svg escapes what it draws; only ids matching _CSS_SAFE_ID reach the style rules.
    return mark_safe(str(graph.to_svg(g))), mark_safe("\n".join(rules)), progress


# What a viewer without durable.view_payloads sees in place of an encrypted payload.
ENCRYPTED = "encrypted"


def execution_view(execution: WorkflowExecution, *, payloads: bool = True) -> ExecutionView:
    using = durable_settings.DATABASE
    rows = list(StepExecution.objects.using(using).filter(execution=execution).order_by("id"))
    steps = step_states(execution, rows)
    svg, style, foreach_progress = _graph(execution)
    return ExecutionView(
        execution=execution,
        steps=steps,
        attempts=rows,
        bars=timeline(execution, rows),
        graph_svg=svg,
        node_style=style,
        pending_inputs=list(
            PendingInput.objects.using(using).filter(
                execution=execution, status=PendingInput.Status.PENDING
            )
        ),
        context_json=pretty_json(execution.context) if payloads else ENCRYPTED,
        result_json=(
            None
            if execution.result is None
            else pretty_json(execution.result)
            if payloads
            else ENCRYPTED
        ),
        foreach_progress=foreach_progress,
        payloads_hidden=not payloads,
    )


def error_text(error: Any) -> str:
    if not error:
        return ""
    if isinstance(error, dict):
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return str(error)


def fanout_progress(execution: WorkflowExecution) -> dict[str, Any] | None:
    """Items done / total over the execution's open foreach fan-outs, if any."""
    records = [r for r in (execution.fanouts or {}).values() if isinstance(r, dict)]
    total = sum(int(r.get("total") or 0) for r in records)
    if not total:
        return None
    return {"done": sum(int(r.get("done") or 0) for r in records), "total": total}


def list_progress(
    executions: list[WorkflowExecution], reported: dict[int, Any] | None = None
) -> dict[int, int]:
    """The percentage to show on each unfinished execution's row: its running step's own
    report (`ctx.progress`) first, else its open foreach blocks' items done / total.
    `reported` maps execution pks to their running step's progress when already known."""
    if reported is None:
        unfinished = [e.pk for e in executions if not e.is_finished]
        reported = dict(
            StepExecution.objects.using(durable_settings.DATABASE)
            .filter(execution_id__in=unfinished, status="running", progress__isnull=False)
            .values_list("execution_id", "progress")
        )
    out: dict[int, int] = {}
    for execution in executions:
        if execution.is_finished:
            continue
        value = percent(reported.get(execution.pk))
        if value is None:
            value = percent(fanout_progress(execution))
        if value is not None:
            out[execution.pk] = value
    return out


def with_progress(
    executions: Any, reported: dict[int, Any] | None = None
) -> list[WorkflowExecution]:
    """The executions, each with `progress_percent` (None when it reports none) for its row."""
    rows = list(executions)
    values = list_progress(rows, reported)
    for execution in rows:
        execution.progress_percent = values.get(execution.pk)
    return rows
