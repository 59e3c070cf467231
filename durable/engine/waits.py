"""The engine's side of `ctx` waits: what a step run recorded, events, input responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from durable.flow.ops import copy_json
from durable.flow.waits import WaitSpec
from durable.models import PendingInput, WorkflowEvent
from durable.store.records import ClaimedTask, WaitEffects


class StepWaits:
    """A `WaitRuntime` for one run of one step; collects what to apply at its checkpoint."""

    def __init__(self, claim: ClaimedTask, using: str) -> None:
        self.claim = claim
        self.using = using
        self.effects = WaitEffects(recorded=list(claim.recorded_waits))
        # Waits only happen in steps, whose attempt rows are keyed by the routing token.
        self._scope_key = claim.token.scope_key()

    def now(self) -> datetime:
        return timezone.now()

    def recorded(self) -> list[Any]:
        return self.effects.recorded

    def pending(self) -> WaitSpec | None:
        return self.claim.pending_wait

    def record(self, value: Any) -> None:
        self.effects.recorded.append(value)

    def take_event(self, name: str, filter: Callable[[Any], bool] | None) -> tuple[bool, Any]:
        events = (
            WorkflowEvent.objects.using(self.using)
            .filter(execution_id=self.claim.execution_pk, name=name, consumed_at__isnull=True)
            .exclude(id__in=self.effects.consumed_events)
            .order_by("id")
            .values_list("id", "payload")
        )
        for event_id, payload in events:
            self.effects.seen_event_id = max(self.effects.seen_event_id, event_id)
            if filter is None or filter(copy_json(payload)):
                self.effects.consumed_events.append(event_id)
                return True, payload
        return False, None

    def _input(self, name: str) -> PendingInput | None:
        return (
            PendingInput.objects.using(self.using)
            .filter(
                execution_id=self.claim.execution_pk,
                step_name=self.claim.step,
                scope_key=self._scope_key,
                input_name=name,
                wait_index=len(self.effects.recorded),
            )
            .order_by("-id")
            .first()
        )

    def input_response(self, name: str) -> tuple[bool, Any]:
        row = self._input(name)
        if row is not None and row.status == PendingInput.Status.COMPLETED:
            return True, row.response
        return False, None

    def input_timed_out(self, name: str) -> None:
        self.effects.timed_out_inputs.append((name, len(self.effects.recorded)))
