"""The engine's side of `ctx` waits: what a step run recorded, events, input responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from durable.engine.children import Children, child_id, child_start
from durable.flow.ops import copy_json
from durable.flow.waits import ChildOutcome, WaitSpec
from durable.models import PendingInput, WorkflowEvent
from durable.store.livelogs import resumes_attempt
from durable.store.records import ClaimedTask, WaitEffects


class StepWaits:
    """A `WaitRuntime` for one run of one step; collects what to apply at its checkpoint.

    A step's waits never query the database while it runs: an async step runs on the
    worker's event loop and a sync one on a pool thread, and neither holds a connection of
    Durable's. What they may look at is read before the run (`load`), when there can be
    something to read: in a run that resumes after a wait (events, responses, children of
    its earlier runs), and when the claim saw open events or children. Whatever arrives
    later is caught when the step parks (`durable.store.waits.suspend_step`), which then
    wakes it at once.
    """

    def __init__(self, claim: ClaimedTask) -> None:
        self.claim = claim
        self.effects = WaitEffects(recorded=list(claim.recorded_waits))
        # Waits only happen in steps, whose attempt rows are keyed by the routing token.
        self._scope_key = claim.token.scope_key()
        self._events: list[tuple[int, str, Any]] = []
        self._inputs: list[PendingInput] = []
        self._children = Children()

    @staticmethod
    def needs_loading(claim: ClaimedTask) -> bool:
        return resumes_attempt(claim) or claim.open_events or claim.has_children

    def load(self, using: str) -> None:
        """Read what the step's waits may look at (on a connection of the caller's)."""
        claim = self.claim
        self._events = list(
            WorkflowEvent.objects.using(using)
            .filter(execution_id=claim.execution_pk, consumed_at__isnull=True)
            .order_by("id")
            .values_list("id", "name", "payload")
        )
        if resumes_attempt(claim):
            self._inputs = list(
                PendingInput.objects.using(using)
                .filter(
                    execution_id=claim.execution_pk,
                    step_name=claim.step,
                    scope_key=self._scope_key,
                )
                .order_by("-id")
            )
        if resumes_attempt(claim) or claim.has_children:
            self._children.load(claim.execution_pk, using)

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

    def patched(self, patch_id: str, *, replaying: bool) -> bool:
        known = self.claim.patches.get(patch_id, self.effects.patches.get(patch_id))
        if known is None:
            # Earlier runs of this attempt that passed here recorded their answer when they
            # parked; none recorded means their code had no such patch.
            known = not replaying
            self.effects.patches[patch_id] = known
        return known

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

    def _events_named(self, name: str) -> list[tuple[int, Any]]:
        return [(event_id, payload) for event_id, n, payload in self._events if n == name]

    def _input(self, name: str) -> PendingInput | None:
        """The newest input row of the wait being reached (a retry may have left older)."""
        index = len(self.effects.recorded)
        rows = (r for r in self._inputs if (r.input_name, r.wait_index) == (name, index))
        return next(rows, None)
