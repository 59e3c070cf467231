"""`ctx`: what a step reads and writes. Every write is validated and recorded as an op."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from durable.dsl.payloads import is_model_instance
from durable.exceptions import ChildWorkflowFailed, WaitTimeout
from durable.flow.cancellation import Cancellation
from durable.flow.continuation import ContinueAsNew
from durable.flow.inputs import build_schema
from durable.flow.ops import Op, apply_op, copy_json
from durable.flow.result import result_op
from durable.flow.waits import (
    MAX_NAME_LENGTH,
    NO_VALUE,
    ChildOutcome,
    Suspend,
    WaitKind,
    WaitRuntime,
    WaitSpec,
    duration,
    read_timed_out_marker,
    timed_out_marker,
)
from durable.serialization import normalize, safe_repr
from durable.time import as_seconds

_MISSING = object()

ProgressHook = Callable[[float, float | None], None]


class ReadOnlyContextError(TypeError):
    """Raised when routing code (`on=`, `items=`, `while_=`) tries to write the context."""


class Context:
    """The workflow's persistent state as seen by one step attempt."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        input: Any = None,
        workflow_id: str = "",
        current_step: str | None = None,
        attempt: int = 1,
        read_only: bool = False,
        progress_hook: ProgressHook | None = None,
        waits: WaitRuntime | None = None,
        cancellation: Cancellation | None = None,
    ) -> None:
        self._data = data
        self._cancellation = cancellation
        self._read_only = read_only
        self._progress_hook = progress_hook
        self._waits = waits
        self._wait_index = 0
        self.ops: list[Op] = []
        self.input = input
        self.workflow_id = workflow_id
        self.current_step = current_step
        self.attempt = attempt

    # -- reading: values are copies, so mutating one in place cannot bypass the op log --

    def __getitem__(self, key: str) -> Any:
        return copy_json(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key, _MISSING)
        return default if value is _MISSING else copy_json(value)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @property
    def data(self) -> dict[str, Any]:
        return copy_json(self._data)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<Context {self.workflow_id} step={self.current_step} keys={sorted(self._data)}>"

    # -- writing -------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise ReadOnlyContextError(
                "the context is read-only here; write to it from a step, not from on=, items= "
                "or while_="
            )

    def _record(self, op: Op) -> None:
        self._writable()
        apply_op(self._data, op)
        self.ops.append(op)

    @staticmethod
    def _key(key: object) -> str:
        if not isinstance(key, str):
            raise TypeError(f"context keys must be strings, got {key!r}")
        return key

    def put(self, key: str | Mapping[str, Any], value: Any = _MISSING) -> None:
        """`put("k", v)` or `put({"k": v, ...})`."""
        if isinstance(key, Mapping) and value is _MISSING:
            # Validate every value first: a bad one must leave the context unchanged.
            ops = [["put", self._key(k), normalize(v, f"context[{k!r}]")] for k, v in key.items()]
            for op in ops:
                self._record(op)
            return
        if value is _MISSING:
            raise TypeError("put() takes a key and a value, or one dict")
        key = self._key(key)
        self._record(["put", key, normalize(value, f"context[{key!r}]")])

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def update(self, key: str, fn: Callable[[Any], Any]) -> None:
        """Replace `key` with `fn(current)` (current is None when absent)."""
        self.put(key, fn(self.get(key)))

    def merge(self, values: Mapping[str, Any]) -> None:
        self.put(values)

    def delete(self, key: str) -> None:
        self._record(["delete", self._key(key)])

    def init_accumulator(self, key: str, initial: Any = None) -> None:
        """Set `key` to `initial` unless it exists, so a re-run or a sibling branch keeps values."""
        key = self._key(key)
        value = [] if initial is None else initial
        self._record(["init", key, normalize(value, f"context[{key!r}]")])

    def append(self, key: str, value: Any) -> None:
        key = self._key(key)
        self._record(["append", key, normalize(value, f"context[{key!r}]")])

    def increment(self, key: str, amount: int | float = 1) -> None:
        key = self._key(key)
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise TypeError(f"increment amount must be a number, got {amount!r}")
        self._record(["increment", key, normalize(amount, f"context[{key!r}]")])

    def set_result(self, value: Any) -> None:
        """Make `value` the workflow's result (instead of its last step's output); it takes
        effect when this step completes."""
        self._writable()
        self.ops.append(result_op(normalize(value, "result")))

    # -- facts and reporting -------------------------------------------------------------

    def progress(self, done: float, total: float | None = None) -> None:
        """Report progress of a long step; shown live in the dashboard."""
        if self._progress_hook is not None:
            self._progress_hook(done, total)

    @property
    def cancelled(self) -> bool:
        """True once this attempt was asked to stop: its `timeout=` passed, its execution
        was cancelled, or its worker gave it up. Whatever it does next is discarded."""
        return self._cancellation is not None and self._cancellation.requested

    def raise_if_cancelled(self) -> None:
        """Raise `durable.StepCancelled` if this attempt was asked to stop."""
        if self._cancellation is not None:
            self._cancellation.raise_if_requested(self.current_step)

    # -- long-lived runs -----------------------------------------------------------------

    def continue_as_new(self, input: Any = None) -> None:
        """End this run (status `continued`) and start a fresh run of the same workflow
        with `input`, linked to this one. Nothing after the call runs, and this step's
        context writes are not kept: pass on what the next run needs in `input`."""
        self._writable()
        if input is None:
            input = {}
        if is_model_instance(input):
            input = normalize(input, "continue_as_new input")  # a dataclass or pydantic model
        if not isinstance(input, Mapping):
            raise TypeError(
                f"continue_as_new() takes the new run's input as a dict, got {safe_repr(input, 80)}"
            )
        raise ContinueAsNew(normalize(dict(input), "continue_as_new input"))

    def patched(self, patch_id: str) -> bool:
        """True when this run takes the code guarded by `patch_id`: it reaches the call for
        the first time under code that has it. False when the step re-runs code an earlier
        run of it (before a wait) passed without the patch. The answer is recorded for the
        run: every later call in any step of it returns the same, across deploys."""
        if not isinstance(patch_id, str) or not 0 < len(patch_id) <= MAX_NAME_LENGTH:
            raise ValueError(
                f"patched() takes a patch id of 1 to {MAX_NAME_LENGTH} characters, "
                f"got {safe_repr(patch_id, 80)}"
            )
        runtime = self._runtime("patched()")
        # Earlier runs of this attempt passed every wait recorded, and reached the one it
        # is parked on: code before those was run before, maybe under other code.
        reached = len(runtime.recorded())
        pending = runtime.pending()
        if pending is not None:
            reached = max(reached, pending.index + 1)
        return runtime.patched(patch_id, replaying=self._wait_index < reached)

    # -- waiting (see durable/flow/waits.py for the re-run rules) ------------------------

    def sleep_for(
        self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> None:
        """Park the workflow for a while; no worker is held meanwhile."""
        delta = duration(seconds=seconds, minutes=minutes, hours=hours, days=days)
        runtime, index, done, _ = self._next_wait()
        if done:
            return
        self._sleep(runtime, index, self._deadline(runtime, "sleep", "", index, delta))

    def sleep_until(self, when: datetime) -> None:
        """Park the workflow until `when`, a timezone-aware datetime."""
        if not isinstance(when, datetime):
            raise TypeError(f"sleep_until() takes a datetime, got {when!r}")
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(
                "sleep_until() needs a timezone-aware datetime (e.g. "
                "datetime(2026, 12, 25, tzinfo=UTC)); a naive one is ambiguous"
            )
        runtime, index, done, _ = self._next_wait()
        if done:
            return
        # Once parked, the stored deadline rules (durable.testing.advance_time moves it).
        pending = runtime.pending()
        if pending is not None and pending.same_wait("sleep", "", index) and pending.deadline:
            when = pending.deadline
        self._sleep(runtime, index, when)

    def wait_for_event(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        filter: Callable[[Any], bool] | None = None,
        timeout_value: Any = NO_VALUE,
    ) -> Any:
        """Return the payload of the first event `name` (matching `filter`) sent to this
        workflow, waiting for it if none arrived yet."""
        name = self._wait_name(name)
        limit = self._timeout(timeout)
        if filter is not None and not callable(filter):
            raise TypeError(f"filter= must be a callable taking the event payload, got {filter!r}")
        runtime, index, done, value = self._next_wait()
        if done:
            return value
        found, payload = runtime.take_event(name, filter)
        if found:
            runtime.record(payload)
            return payload
        deadline = self._deadline(runtime, "event", name, index, limit)
        if deadline is not None and runtime.now() >= deadline:
            return self._timed_out(runtime, f"event {name!r}", timeout_value)
        raise Suspend(WaitSpec("event", index, name, deadline))

    def wait_for_input(
        self,
        name: str,
        *,
        type: str = "free_text",
        prompt: str = "",
        fields: list[dict[str, Any]] | None = None,
        choices: list[Any] | None = None,
        timeout: timedelta | float | None = None,
        timeout_value: Any = NO_VALUE,
    ) -> Any:
        """Ask a person for input (shown in the admin and dashboard) and return the response."""
        name = self._wait_name(name)
        limit = self._timeout(timeout)
        schema = build_schema(type, prompt, fields, choices)
        runtime, index, done, value = self._next_wait()
        if done:
            return value
        responded, response = runtime.input_response(name)
        if responded:
            runtime.record(response)
            return response
        deadline = self._deadline(runtime, "input", name, index, limit)
        if deadline is not None and runtime.now() >= deadline:
            runtime.input_timed_out(name)
            return self._timed_out(runtime, f"input {name!r}", timeout_value)
        raise Suspend(WaitSpec("input", index, name, deadline, schema))

    # -- child workflows (see durable/store/children.py) ---------------------------------

    def start_child(
        self,
        workflow: Any,
        input: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
    ) -> str:
        """Start `workflow` (a Workflow class or name) as a child of this workflow and return
        its id. It is created when this step's run is checkpointed; the same call in a re-run
        of the step (after a wait or a crash) returns the same id, a retry starts a new one."""
        runtime = self._runtime("start_child()")
        return runtime.start_child(workflow, input, queue, priority)

    def wait_for_child(self, workflow_id: str, *, timeout: timedelta | float | None = None) -> Any:
        """Return the result of the child `workflow_id`, waiting for it to finish; raise
        `ChildWorkflowFailed` if it ended any other way than completed."""
        if not isinstance(workflow_id, str) or not 0 < len(workflow_id) <= MAX_NAME_LENGTH:
            raise ValueError(f"wait_for_child() takes a child's workflow id, got {workflow_id!r}")
        limit = self._timeout(timeout)
        runtime, index, done, value = self._next_wait()
        if done:
            recorded = read_child_marker(value)
            if recorded is None:
                return value  # a value given by durable.resume()
            if recorded[0] == workflow_id:
                return _child_result(workflow_id, recorded[1])
            # Recorded for another child: this is a retry that started a new one.
            runtime.forget(index)
        outcome = runtime.child_outcome(workflow_id)
        if outcome is not None:
            runtime.record(child_marker(workflow_id, outcome))
            return _child_result(workflow_id, outcome)
        deadline = self._deadline(runtime, "child", workflow_id, index, limit)
        if deadline is not None and runtime.now() >= deadline:
            return self._timed_out(runtime, f"child workflow {workflow_id}", NO_VALUE)
        raise Suspend(WaitSpec("child", index, workflow_id, deadline))

    def _runtime(self, what: str) -> WaitRuntime:
        if self._waits is None:
            raise RuntimeError(f"{what} can only be used inside a step run by Durable")
        return self._waits

    def _next_wait(self) -> tuple[WaitRuntime, int, bool, Any]:
        runtime = self._runtime("waits")
        index = self._wait_index
        self._wait_index += 1
        recorded = runtime.recorded()
        if index < len(recorded):
            timed_out = read_timed_out_marker(recorded[index])
            if timed_out is None:
                return runtime, index, True, copy_json(recorded[index])
            attempt, message = timed_out
            if attempt == self.attempt:
                raise WaitTimeout(message)
            runtime.forget(index)  # a retry: this wait, and those after it, wait afresh
        return runtime, index, False, None

    @staticmethod
    def _deadline(
        runtime: WaitRuntime, kind: WaitKind, name: str, index: int, limit: timedelta | None
    ) -> datetime | None:
        # The deadline is fixed when the wait is first reached, not on every re-run.
        pending = runtime.pending()
        if pending is not None and pending.same_wait(kind, name, index):
            return pending.deadline
        return runtime.now() + limit if limit is not None else None

    @staticmethod
    def _sleep(runtime: WaitRuntime, index: int, deadline: datetime | None) -> None:
        assert deadline is not None
        if runtime.now() >= deadline:
            runtime.record(None)
            return
        raise Suspend(WaitSpec("sleep", index, "", deadline))

    def _timed_out(self, runtime: WaitRuntime, what: str, timeout_value: Any) -> Any:
        if timeout_value is NO_VALUE:
            message = f"{what} timed out"
            runtime.record(timed_out_marker(self.attempt, message))
            raise WaitTimeout(message)
        value = normalize(timeout_value, "timeout_value")
        runtime.record(value)
        return value

    @staticmethod
    def _wait_name(name: object) -> str:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
            raise ValueError(
                f"a wait needs a non-empty name of at most {MAX_NAME_LENGTH} characters, "
                f"got {safe_repr(name, 80)}"
            )
        return name

    @staticmethod
    def _timeout(timeout: timedelta | float | None) -> timedelta | None:
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, timedelta | int | float):
            raise TypeError(f"timeout must be a timedelta or a number of seconds, got {timeout!r}")
        seconds = as_seconds(timeout)
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"timeout must be a finite duration >= 0, got {timeout!r}")
        return timedelta(seconds=seconds)


# How a child wait is recorded, so a re-run of the step returns (or raises) the same again.
_CHILD = "__durable_child__"


def child_marker(workflow_id: str, outcome: ChildOutcome) -> dict[str, Any]:
    return {
        _CHILD: {
            "id": workflow_id,
            "status": outcome.status,
            "result": outcome.result,
            "error": outcome.error,
        }
    }


def read_child_marker(value: Any) -> tuple[str, ChildOutcome] | None:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_CHILD), dict):
        marker = value[_CHILD]
        outcome = ChildOutcome(marker["status"], marker.get("result"), marker.get("error"))
        return str(marker["id"]), outcome
    return None


def _child_result(workflow_id: str, outcome: ChildOutcome) -> Any:
    if outcome.status != "completed":
        raise ChildWorkflowFailed(workflow_id, outcome.status, outcome.error)
    return copy_json(outcome.result)
