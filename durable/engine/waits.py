"""The engine's side of `ctx` waits: what a step run recorded, events, input responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from durable.dsl import registry
from durable.engine.children import Children, child_id, child_start
from durable.exceptions import WorkflowNotFound
from durable.flow.ops import copy_json
from durable.flow.waits import ChildOutcome, WaitSpec
from durable.models import PendingInput, WorkflowEvent
from durable.store.records import ClaimedTask, WaitEffects


class StepWaits:
    """A `WaitRuntime` for one run of one step; collects what to apply at its checkpoint.

    Sync steps look events and responses up when a wait asks. An `async def` step runs on
    the event loop thread, where Django refuses queries (SynchronousOnlyOperation), so what
    its waits may look at is loaded up front, in the executor's thread. Either way, an event
    or a response arriving after the look-up is caught when the step parks
    (`durable.store.waits.suspend_step`).
    """

    def __init__(self, claim: ClaimedTask, using: str) -> None:
        self.claim = claim
        self.using = using
        self.effects = WaitEffects(recorded=list(claim.recorded_waits))
        # Waits only happen in steps, whose attempt rows are keyed by the routing token.
        self._scope_key = claim.token.scope_key()
        self._events: list[tuple[int, str, Any]] | None = None
        self._inputs: list[PendingInput] | None = None
        is_async = _is_async_step(claim)
        if is_async:
            self._events = list(self._open_events().values_list("id", "name", "payload"))
            self._inputs = list(self._step_inputs())
        self._children = Children(claim.execution_pk, using, preload=is_async)

    def now(self) -> datetime:
        return timezone.now()

    def recorded(self) -> list[Any]:
        return self.effects.recorded

    def pending(self) -> WaitSpec | None:
        return self.claim.pending_wait

    def record(self, value: Any) -> None:
        self.effects.recorded.append(value)

    def forget(self, index: int) -> None:
        del self.effects.recorded[index:]

    def take_event(self, name: str, filter: Callable[[Any], bool] | None) -> tuple[bool, Any]:
        for event_id, payload in self._events_named(name):
            if event_id in self.effects.consumed_events:
                continue
            self.effects.seen_event_id = max(self.effects.seen_event_id, event_id)
            if filter is None or filter(copy_json(payload)):
                self.effects.consumed_events.append(event_id)
                return True, payload
        return False, None

    def input_response(self, name: str) -> tuple[bool, Any]:
        row = self._input(name)
        if row is not None and row.status == PendingInput.Status.COMPLETED:
            return True, row.response
        return False, None

    def input_timed_out(self, name: str) -> None:
        self.effects.timed_out_inputs.append((name, len(self.effects.recorded)))

    def start_child(
        self, workflow: Any, input: Any, queue: str | None, priority: int | None
    ) -> str:
        claim = self.claim
        wid = child_id(
            claim.workflow_id,
            claim.step,
            self._scope_key,
            claim.attempt,
            len(self.effects.children),
        )
        self.effects.children.append(child_start(wid, workflow, input, queue, priority))
        self._children.started.add(wid)
        return wid

    def child_outcome(self, workflow_id: str) -> ChildOutcome | None:
        return self._children.outcome(workflow_id)

    def _open_events(self) -> Any:
        return (
            WorkflowEvent.objects.using(self.using)
            .filter(execution_id=self.claim.execution_pk, consumed_at__isnull=True)
            .order_by("id")
        )

    def _events_named(self, name: str) -> list[tuple[int, Any]]:
        if self._events is not None:
            return [(event_id, payload) for event_id, n, payload in self._events if n == name]
        return list(self._open_events().filter(name=name).values_list("id", "payload"))

    def _step_inputs(self) -> Any:
        return (
            PendingInput.objects.using(self.using)
            .filter(
                execution_id=self.claim.execution_pk,
                step_name=self.claim.step,
                scope_key=self._scope_key,
            )
            .order_by("-id")
        )

    def _input(self, name: str) -> PendingInput | None:
        """The newest input row of the wait being reached (a retry may have left older)."""
        index = len(self.effects.recorded)
        if self._inputs is not None:
            rows = (r for r in self._inputs if (r.input_name, r.wait_index) == (name, index))
            return next(rows, None)
        found: PendingInput | None = (
            self._step_inputs().filter(input_name=name, wait_index=index).first()
        )
        return found


def _is_async_step(claim: ClaimedTask) -> bool:
    try:
        return registry.get(claim.workflow_name).step(claim.step).is_async
    except (WorkflowNotFound, KeyError, AssertionError):
        return False
