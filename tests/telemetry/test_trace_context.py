"""What `durable.start()` records of the caller's trace, and what is derived from it."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

import durable
from durable.engine.telemetry import Telemetry
from durable.models import WorkflowExecution
from durable.telemetry import tracing
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.django_db(transaction=True)


def traceparent(span: object) -> str:
    context = span.get_span_context()  # type: ignore[attr-defined]
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def stored(wid: str) -> object:
    return WorkflowExecution.objects.get(workflow_id=wid).trace_context


def test_start_and_start_many_record_the_current_span_as_w3c_trace_context() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as span:
        one = durable.start(wf.Counted, {})
        many = durable.start_many(wf.Counted, [{"n": 1}, {"n": 2}])
    expected = {"traceparent": traceparent(span)}
    assert stored(one) == expected
    assert [stored(wid) for wid in many] == [expected, expected]


def test_a_start_outside_any_span_records_nothing() -> None:
    assert stored(durable.start(wf.Counted, {})) is None


def test_a_runs_workflow_span_ids_are_fixed_by_its_id_and_its_callers_trace() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("caller") as span:
        carrier = tracing.carrier()
    caller = span.get_span_context()
    run = tracing.RunTrace("wid-1", carrier)
    assert run.trace_id == caller.trace_id
    assert run.span_id == tracing.RunTrace("wid-1", None).span_id
    assert run.span_id != tracing.RunTrace("wid-2", carrier).span_id
    # Without a caller, a trace of its own, the same for every step of the run.
    alone = tracing.RunTrace("wid-1", None)
    assert alone.trace_id != caller.trace_id
    assert alone.trace_id == tracing.RunTrace("wid-1", {"traceparent": "garbage"}).trace_id
    # A child records its parent's workflow span as its caller.
    child = tracing.RunTrace("child-1", tracing.child_carrier("wid-1", carrier))
    assert (child.trace_id, child.caller.span_id) == (caller.trace_id, run.span_id)


def test_without_an_sdk_or_metrics_the_worker_makes_no_probe() -> None:
    assert tracing.enabled() is False  # this process configured no tracer provider
    assert Telemetry().begin(run=object()) is None
