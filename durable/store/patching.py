"""The step code workers run, and the in-flight runs a deploy would change unpatched.

Each worker records, as it starts, the source hash and patch ids of every step it can run
(`StepCode`, one row per workflow: the code running now). `durable_deploy_check`, run
with the code about to be deployed, compares it and lists the in-flight executions that
still have a changed, unpatched step ahead of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.utils import timezone

from durable.dsl import registry
from durable.dsl.nodes import Definition
from durable.dsl.stepcode import step_code, unpatched_changes
from durable.graph.build import generate
from durable.models import StepCode, WorkflowExecution
from durable.store.deploys import IN_FLIGHT


def record_step_code(definitions: Sequence[Definition], *, using: str) -> None:
    """Record the step code of `definitions` as what the workers run now."""
    now = timezone.now()
    for definition in definitions:
        StepCode.objects.using(using).update_or_create(
            workflow_name=definition.name,
            defaults={"steps": step_code(definition), "recorded_at": now},
        )


def unpatched(
    *, using: str, workflows: Iterable[str] | None = None
) -> list[tuple[WorkflowExecution, list[str]]]:
    """In-flight executions with steps ahead of them (their current steps included) whose
    code the current definitions change without a new `ctx.patched` id."""
    recorded = {row.workflow_name: row.steps for row in StepCode.objects.using(using)}
    changed: dict[str, list[str]] = {}
    for definition in registry.all_definitions():
        if definition.name in recorded:
            steps = unpatched_changes(recorded[definition.name], step_code(definition))
            if steps:
                changed[definition.name] = steps
    if workflows is not None:
        wanted = set(workflows)
        changed = {name: steps for name, steps in changed.items() if name in wanted}
    if not changed:
        return []
    out: list[tuple[WorkflowExecution, list[str]]] = []
    executions = WorkflowExecution.objects.using(using).filter(
        status__in=IN_FLIGHT, workflow_name__in=list(changed)
    )
    for execution in executions.order_by("id").iterator(chunk_size=500):
        definition = registry.get(execution.workflow_name)
        current = set(
            execution.tasks.using(using).filter(kind="step").values_list("step", flat=True)
        )
        if not current and execution.current_step:
            current = {execution.current_step}
        ahead = _reachable(definition, current)
        hit = [step for step in changed[execution.workflow_name] if step in ahead]
        if hit:
            out.append((execution, hit))
    return out


def _reachable(definition: Definition, start: set[str]) -> set[str]:
    """The nodes reachable from `start` along the graph's edges, `start` included."""
    edges: dict[str, list[str]] = {}
    for edge in generate(definition)["edges"]:
        edges.setdefault(edge["from"], []).append(edge["to"])
    seen, frontier = set(start), list(start)
    while frontier:
        for target in edges.get(frontier.pop(), []):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen
