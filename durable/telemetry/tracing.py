"""OpenTelemetry spans: `workflow <name>` per execution, `step <name>` per attempt.

Only the OpenTelemetry API is needed (`durable[otel]`); the application configures the SDK
and its exporter. Until it has, every function here returns at its first check, so a
project without tracing pays nothing.

A run can outlive any process: started by a web request, its steps may run on several
workers, days apart. So nothing is kept open between steps:

- `durable.start()` records the caller's W3C trace context on the execution (`carrier`);
- the workflow span's ids are known in advance: its trace is the caller's (or, for a run
  started outside any trace, one derived from the workflow id) and its span id is derived
  from the workflow id. Each step attempt's span names that span as its parent, whichever
  worker runs it, whenever;
- the workflow span itself is exported once, by the process that finishes the run, from
  the run's start to its end (`workflow_finished`). Exporting a span under an id chosen in
  advance needs the SDK's id generator (`opentelemetry-sdk`'s TracerProvider, whatever the
  exporter); under another API implementation the workflow span gets an id of its own and
  the step spans point at a parent that is never exported.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import transaction

try:
    from opentelemetry import trace
    from opentelemetry.context import Context, attach, detach
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # durable[otel] is not installed
    trace = None  # type: ignore[assignment]

logger = logging.getLogger("durable.telemetry")

TRACER_NAME = "durable"
# Statuses a workflow span ends with an ERROR status for.
FAILED_STATUSES = frozenset({"failed", "compensated", "compensation_failed"})

_propagator = TraceContextTextMapPropagator() if trace is not None else None
_configured = False


def enabled() -> bool:
    """Whether the application configured an OpenTelemetry SDK (a tracer provider other
    than the API's placeholders). Once it has, it stays so."""
    global _configured
    if _configured:
        return True
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False
    _configured = True
    return True


def carrier() -> dict[str, str] | None:
    """The current span's W3C trace context (`traceparent`, `tracestate`), to record on an
    execution being started; None outside a valid span (or without the API)."""
    if trace is None or _propagator is None:
        return None
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    headers: dict[str, str] = {}
    _propagator.inject(headers)
    return headers or None


def child_carrier(workflow_id: str, stored: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The trace context a child workflow of run `workflow_id` records: the parent's
    workflow span as its caller."""
    if trace is None:
        return None
    run = RunTrace(workflow_id, stored)
    return {"traceparent": f"00-{run.trace_id:032x}-{run.span_id:016x}-{int(run.trace_flags):02x}"}


class RunTrace:
    """Where the spans of one execution go: its trace, its workflow span's id."""

    __slots__ = ("caller", "parent", "span_id", "trace_flags", "trace_id", "trace_state")

    def __init__(self, workflow_id: str, stored: Mapping[str, Any] | None) -> None:
        assert trace is not None
        digest = hashlib.blake2b(workflow_id.encode(), digest_size=24).digest()
        # Never 0: an all-zero id is invalid.
        self.span_id = int.from_bytes(digest[:8], "big") or 1
        self.caller: Any = None
        if stored and _propagator is not None:
            context = _propagator.extract({str(k): str(v) for k, v in stored.items()})
            parent = trace.get_current_span(context).get_span_context()
            if parent.is_valid:
                self.caller = parent
        if self.caller is not None:
            self.trace_id = self.caller.trace_id
            self.trace_flags = self.caller.trace_flags
            self.trace_state = self.caller.trace_state
        else:
            self.trace_id = int.from_bytes(digest[8:], "big") or 1
            self.trace_flags = trace.TraceFlags(trace.TraceFlags.SAMPLED)
            self.trace_state = None
        # The context a step span starts in: the workflow span current, as a remote parent.
        workflow = trace.SpanContext(
            self.trace_id,
            self.span_id,
            is_remote=True,
            trace_flags=self.trace_flags,
            trace_state=self.trace_state,
        )
        self.parent = trace.set_span_in_context(trace.NonRecordingSpan(workflow), Context())

    def caller_context(self) -> Context:
        """The context the workflow span starts in: the caller's span, or none (a root)."""
        assert trace is not None
        if self.caller is None:
            return Context()
        return trace.set_span_in_context(trace.NonRecordingSpan(self.caller), Context())


def start_step_span(
    *,
    workflow_name: str,
    workflow_id: str,
    step: str,
    kind: str,
    attempt: int,
    queue: str,
    stored: Mapping[str, Any] | None,
) -> Any:
    """Start the span of one step attempt (or compensation), child of its run's workflow
    span. The caller ends it (`end_span`)."""
    attributes: dict[str, Any] = {
        "durable.workflow.name": workflow_name,
        "durable.workflow.id": workflow_id,
        "durable.step": step,
        "durable.attempt": attempt,
        "durable.queue": queue,
    }
    if kind != "step":
        attributes["durable.step.kind"] = kind
    return _durable_tracer().tracer.start_span(
        f"step {step}", context=run_trace(workflow_id, stored).parent, attributes=attributes
    )


# The traces of recent runs: a run's steps, often chained on one worker, and its end parse
# its trace context once. Cleared when full (a cache, not a record).
_runs: dict[tuple[str, str], RunTrace] = {}
RUNS_KEPT = 4096


def run_trace(workflow_id: str, stored: Mapping[str, Any] | None) -> RunTrace:
    key = (workflow_id, str(stored.get("traceparent", "")) if stored else "")
    found = _runs.get(key)
    if found is None:
        if len(_runs) >= RUNS_KEPT:
            _runs.clear()
        found = _runs[key] = RunTrace(workflow_id, stored)
    return found


def make_current(span: Any) -> object:
    """Make `span` the current span (instrumented libraries the step uses, psycopg or
    Django's, then nest their spans under it); `restore` with the token returned."""
    assert trace is not None
    return attach(trace.set_span_in_context(span))


def restore(token: Any) -> None:
    detach(token)


def record_error(span: Any, error: Mapping[str, Any] | None, description: str) -> None:
    """Mark `span` failed with `error` (a stored error record) as its exception event."""
    assert trace is not None
    if error:
        attributes = {
            "exception.type": str(error.get("type", "")),
            "exception.message": str(error.get("message", "")),
        }
        if error.get("traceback"):
            attributes["exception.stacktrace"] = str(error["traceback"])
        span.add_event("exception", attributes)
    span.set_status(trace.Status(trace.StatusCode.ERROR, description))


def workflow_finished(execution: Any, using: str) -> None:
    """An execution reached a final status in the current transaction: once it commits,
    its workflow span (from the run's start to its end) is exported by a thread of its own,
    off the path of the transaction that finished it (a worker's committer)."""
    if not enabled():
        return
    ended = _WorkflowEnd(execution)
    transaction.on_commit(functools.partial(_ended.put, ended), using=using, robust=True)
    _start_exporter()


_ended: queue.SimpleQueue[_WorkflowEnd] = queue.SimpleQueue()
_exporter: threading.Thread | None = None
_exporter_lock = threading.Lock()


def _start_exporter() -> None:
    global _exporter
    if _exporter is not None:
        return
    with _exporter_lock:
        if _exporter is None:
            _exporter = threading.Thread(target=_export_forever, name="durable-spans", daemon=True)
            _exporter.start()
            # Before the SDK's own exit hook (registered earlier, so run later) flushes.
            atexit.register(_export_pending)


def _export_forever() -> None:
    while True:
        _export(_ended.get())


def _export_pending() -> None:
    while True:
        try:
            ended = _ended.get_nowait()
        except queue.Empty:
            return
        _export(ended)


def _export(ended: _WorkflowEnd) -> None:
    try:
        ended.export()
    except Exception:
        logger.exception("could not export the workflow span of %s", ended.workflow_id)


class _WorkflowEnd:
    """What the workflow span of a finished execution says, read before the commit."""

    def __init__(self, execution: Any) -> None:
        self.workflow_id = str(execution.workflow_id)
        self.name = str(execution.workflow_name)
        self.queue = str(execution.queue)
        self.status = str(execution.status)
        self.error = execution.error
        self.stored = execution.trace_context
        self.completed_at: datetime | None = execution.completed_at
        self.started_at: datetime | None = execution.started_at or self.completed_at

    def export(self) -> None:
        assert trace is not None
        run = run_trace(self.workflow_id, self.stored)
        attributes = {
            "durable.workflow.name": self.name,
            "durable.workflow.id": self.workflow_id,
            "durable.queue": self.queue,
            "durable.status": self.status,
        }
        tracer = _durable_tracer()
        with tracer.reserve(run):
            span = tracer.tracer.start_span(
                f"workflow {self.name}",
                context=run.caller_context(),
                attributes=attributes,
                start_time=_ns(self.started_at),
            )
        if self.status in FAILED_STATUSES:
            error = self.error if isinstance(self.error, dict) else None
            record_error(span, error, f"workflow {self.status}")
        span.end(end_time=_ns(self.completed_at))


def _ns(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1_000_000_000) if moment is not None else None


class _ReservedIds:
    """The SDK's id generator of Durable's workflow tracer, made to hand out the ids a run's
    workflow span was given in advance (per thread, for the next span only)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.local = threading.local()

    def generate_span_id(self) -> int:
        reserved: int | None = getattr(self.local, "span_id", None)
        if reserved is None:
            return int(self.inner.generate_span_id())
        self.local.span_id = None
        return reserved

    def generate_trace_id(self) -> int:
        reserved: int | None = getattr(self.local, "trace_id", None)
        if reserved is None:
            return int(self.inner.generate_trace_id())
        self.local.trace_id = None
        return reserved

    def is_trace_id_random(self) -> bool:
        check = getattr(self.inner, "is_trace_id_random", None)
        return bool(check()) if check is not None else False


class _DurableTracer:
    """Durable's tracer for one tracer provider, whose workflow spans take reserved ids."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        # A tracer of our own: the SDK makes a new one per call, so the generator swapped
        # here is no other tracer's.
        self.tracer = provider.get_tracer(TRACER_NAME)
        inner = getattr(self.tracer, "id_generator", None)
        self.ids = _ReservedIds(inner) if inner is not None else None
        if self.ids is not None:
            self.tracer.id_generator = self.ids

    @contextmanager
    def reserve(self, run: RunTrace) -> Iterator[None]:
        if self.ids is None:
            yield
            return
        self.ids.local.span_id = run.span_id
        # Used only when the span is a root (a run started outside any trace).
        self.ids.local.trace_id = run.trace_id
        try:
            yield
        finally:
            self.ids.local.span_id = self.ids.local.trace_id = None


_tracer: _DurableTracer | None = None


def _durable_tracer() -> _DurableTracer:
    global _tracer
    assert trace is not None
    provider = trace.get_tracer_provider()
    found = _tracer
    if found is None or found.provider is not provider:
        found = _tracer = _DurableTracer(provider)
    return found
