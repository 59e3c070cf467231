"""Parents and children: waking a parent when a child ends, and finding what a cancelled
parent must cancel with it.

Locks are always taken child before parent: a child that ends holds its own row and then
locks its parent's; cancelling a parent locks its unfinished descendants deepest first and
then the parent. The same order everywhere means no deadlock between the two.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from durable.models import FINISHED_STATUSES, Task, TaskStatus, WorkflowExecution
from durable.store import outbox
from durable.store.backend import backend


def _locking(using: str) -> QuerySet[WorkflowExecution]:
    no_key = backend(using).no_key
    return WorkflowExecution.objects.using(using).select_for_update(no_key=no_key)


def notify_parent(child: WorkflowExecution, using: str) -> None:
    """Wake the parent's steps parked on `ctx.wait_for_child(child)`. Called as the child
    reaches its final status, in that transaction. The parent row is locked, so a parent
    step parking at the same time either sees the child finished or is woken here."""
    if child.parent_id is None:
        return
    status = _locking(using).filter(pk=child.parent_id).values_list("status", flat=True).first()
    if status is None or status in FINISHED_STATUSES:
        return
    parked = list(
        Task.objects.using(using).filter(
            execution_id=child.parent_id,
            status=TaskStatus.WAITING,
            wait__kind="child",
            wait__name=child.workflow_id,
        )
    )
    if not parked:
        return
    now = timezone.now()
    Task.objects.using(using).filter(id__in=[t.id for t in parked]).update(run_at=now)
    for task in parked:
        task.run_at = now
    outbox.ready(parked, using)


def lock_unfinished_descendants(root_pk: int, using: str) -> list[WorkflowExecution]:
    """Lock the unfinished descendants of an execution (reached through finished children
    too), deepest generation first; returned shallowest first. Call before locking the root.

    Looks again until nothing new turns up: a descendant started between the look-up and
    the locks is found on the next pass, and once every unfinished one is locked none can
    start another child."""
    locked: dict[int, WorkflowExecution] = {}
    while True:
        generations = _descendant_generations(root_pk, using)
        new = [[pk for pk in generation if pk not in locked] for generation in generations]
        if not any(new):
            break
        for generation in reversed(new):
            rows = _locking(using).filter(pk__in=generation).order_by("pk")
            locked.update((row.pk, row) for row in rows)
    order = [pk for generation in generations for pk in generation]
    return [locked[pk] for pk in order if locked[pk].status not in FINISHED_STATUSES]


def _descendant_generations(root_pk: int, using: str) -> list[list[int]]:
    generations: list[list[int]] = []
    frontier = [root_pk]
    while frontier:
        frontier = list(
            WorkflowExecution.objects.using(using)
            .filter(parent_id__in=frontier)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if frontier:
            generations.append(frontier)
    return generations
