"""OpenTelemetry spans of runs on real worker processes.

The test process holds a caller span (its own SDK tracer provider, in-memory exporter)
around `durable.start()`; the workers run with the SDK and a file exporter
(testproject/telemetry.py), and their spans are read back from the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import durable
from durable.testing import assert_workflow_completed
from tests.support.workers import WorkerPool, wait_until
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.e2e

MODULES = "tests.telemetry.workflows"


def caller_tracer() -> tuple[Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("checkout-view"), exporter


def read_spans(directory: Path) -> list[dict[str, Any]]:
    spans = []
    for path in sorted(directory.glob("spans-*.jsonl")):
        for line in path.read_text().splitlines():
            span = json.loads(line)
            span["file"] = path.name
            spans.append(span)
    return spans


def span_id(span: dict[str, Any]) -> str:
    return str(span["context"]["span_id"])


def trace_id(span: dict[str, Any]) -> str:
    return str(span["context"]["trace_id"])


def hex_ids(span: Any) -> tuple[str, str]:
    """(trace id, span id) of an SDK span, as the JSON export writes them."""
    context = span.get_span_context()
    return f"0x{context.trace_id:032x}", f"0x{context.span_id:016x}"


def otel_env(directory: Path) -> dict[str, str]:
    return {"DURABLE_OTEL_SPANS_DIR": str(directory), "DURABLE_OTEL_PSYCOPG": "1"}


def test_a_run_is_one_trace_under_the_callers_span_with_a_span_per_attempt(
    workers: WorkerPool, tmp_path: Path
) -> None:
    workers.start(1, workflow_modules=MODULES, env=otel_env(tmp_path))
    tracer, caller_spans = caller_tracer()
    with tracer.start_as_current_span("POST /checkout") as caller:
        wid = durable.start(wf.Traced, {})
    assert_workflow_completed(wid, timeout=30)
    caller_trace, caller_id = hex_ids(caller)
    assert [s.name for s in caller_spans.get_finished_spans()] == ["POST /checkout"]

    def workflow_spans() -> list[dict[str, Any]]:
        return [s for s in read_spans(tmp_path) if s["name"] == "workflow tm_traced"]

    wait_until(lambda: workflow_spans(), timeout=10, message=workers.logs)
    spans = read_spans(tmp_path)
    (workflow,) = workflow_spans()
    assert trace_id(workflow) == caller_trace
    assert workflow["parent_id"] == caller_id
    assert workflow["attributes"] == {
        "durable.workflow.name": "tm_traced",
        "durable.workflow.id": wid,
        "durable.queue": "default",
        "durable.status": "completed",
    }
    assert workflow["status"]["status_code"] == "UNSET"

    steps = [s for s in spans if s["name"].startswith("step ")]
    assert sorted((s["name"], s["attributes"]["durable.attempt"]) for s in steps) == [
        ("step fetch", 1),
        ("step flaky", 1),
        ("step flaky", 2),
        ("step query", 1),
    ]
    for span in steps:
        assert trace_id(span) == caller_trace
        assert span["parent_id"] == span_id(workflow)
        assert span["attributes"]["durable.workflow.id"] == wid
        assert span["attributes"]["durable.workflow.name"] == "tm_traced"
        assert span["attributes"]["durable.queue"] == "default"
        # Inside the workflow span's time.
        assert workflow["start_time"] <= span["start_time"] <= span["end_time"]
        assert span["end_time"] <= workflow["end_time"]

    by_attempt = {s["attributes"]["durable.attempt"]: s for s in steps if s["name"] == "step flaky"}
    failed, retried = by_attempt[1], by_attempt[2]
    assert failed["status"] == {
        "status_code": "ERROR",
        "description": "ValueError: the first attempt fails",
    }
    assert failed["attributes"]["durable.status"] == "retrying"
    events = {e["name"]: e["attributes"] for e in failed["events"]}
    assert events["exception"]["exception.type"] == "ValueError"
    assert events["exception"]["exception.message"] == "the first attempt fails"
    assert "Traceback" in events["exception"]["exception.stacktrace"]
    assert events["durable.retry"]["durable.next_attempt"] == 2
    assert retried["status"]["status_code"] == "UNSET"
    assert retried["attributes"]["durable.status"] == "completed"

    # What runs in a step (sync on a thread, async on the loop) nests under its span.
    step_ids = {s["name"]: span_id(s) for s in steps if s["name"] != "step flaky"}
    app = {s["name"]: s for s in spans if s["name"].startswith("app work")}
    assert app["app work (sync)"]["parent_id"] == step_ids["step query"]
    assert app["app work (async)"]["parent_id"] == step_ids["step fetch"]
    if connection.vendor == "postgresql":
        queries = [s for s in spans if s["parent_id"] == step_ids["step query"]]
        assert any(s["attributes"].get("db.statement") == "SELECT 1" for s in queries), queries


def test_a_run_that_sleeps_and_resumes_on_another_worker_stays_in_the_same_trace(
    workers: WorkerPool, tmp_path: Path
) -> None:
    (first,) = workers.start(1, workflow_modules=MODULES, env=otel_env(tmp_path))
    tracer, _ = caller_tracer()
    with tracer.start_as_current_span("POST /subscribe") as caller:
        wid = durable.start(wf.Napper, {"seconds": 2})
    caller_trace, caller_id = hex_ids(caller)
    wait_until(
        lambda: durable.get_execution(wid).status == "waiting",
        timeout=30,
        message=workers.logs,
    )
    assert first.terminate() == 0
    (second,) = workers.start(1, workflow_modules=MODULES, env=otel_env(tmp_path))
    assert_workflow_completed(wid, timeout=30)
    wait_until(
        lambda: any(s["name"] == "workflow tm_napper" for s in read_spans(tmp_path)),
        timeout=10,
        message=workers.logs,
    )

    ours = [s for s in read_spans(tmp_path) if s["name"].startswith(("step ", "workflow "))]
    files = {s["file"] for s in ours}
    assert files == {f"spans-{first.pid}.jsonl", f"spans-{second.pid}.jsonl"}
    (workflow,) = [s for s in ours if s["name"] == "workflow tm_napper"]
    assert workflow["file"] == f"spans-{second.pid}.jsonl"
    assert workflow["parent_id"] == caller_id
    assert {trace_id(s) for s in ours} == {caller_trace}

    steps = sorted(
        (s for s in ours if s["name"].startswith("step ")), key=lambda s: s["start_time"]
    )
    assert [(s["name"], s["file"]) for s in steps] == [
        ("step nap", f"spans-{first.pid}.jsonl"),
        ("step nap", f"spans-{second.pid}.jsonl"),
        ("step after", f"spans-{second.pid}.jsonl"),
    ]
    assert {s["parent_id"] for s in steps} == {span_id(workflow)}
    parked = steps[0]
    assert parked["attributes"]["durable.status"] == "waiting"
    (wait,) = [e for e in parked["events"] if e["name"] == "durable.wait"]
    assert wait["attributes"]["durable.wait.kind"] == "sleep"
    assert "durable.wait.until" in wait["attributes"]


def test_compensations_errors_and_child_workflows_in_the_runs_trace(
    workers: WorkerPool, tmp_path: Path
) -> None:
    workers.start(1, workflow_modules=MODULES, env=otel_env(tmp_path))
    tracer, _ = caller_tracer()
    with tracer.start_as_current_span("POST /book") as caller:
        booking = durable.start(wf.Booking, {})
        parent = durable.start(wf.Parent, {})
    caller_trace, caller_id = hex_ids(caller)
    assert_workflow_completed(parent, timeout=30)
    wait_until(
        lambda: (
            {"workflow tm_booking", "workflow tm_parent", "workflow tm_child"}
            <= {s["name"] for s in read_spans(tmp_path)}
        ),
        timeout=30,
        message=workers.logs,
    )
    spans = {
        (s["name"], s["attributes"].get("durable.workflow.id")): s
        for s in read_spans(tmp_path)
        if s["name"].startswith(("step ", "workflow "))
    }
    assert {trace_id(s) for s in spans.values()} == {caller_trace}

    booked = spans[("workflow tm_booking", booking)]
    assert booked["parent_id"] == caller_id
    assert booked["attributes"]["durable.status"] == "compensated"
    assert booked["status"] == {"status_code": "ERROR", "description": "workflow compensated"}
    (exception,) = [e for e in booked["events"] if e["name"] == "exception"]
    assert exception["attributes"]["exception.message"] == "payment refused"
    pay = spans[("step pay", booking)]
    assert pay["status"]["status_code"] == "ERROR"
    assert pay["attributes"]["durable.status"] == "failed"
    unbook = spans[("step unbook", booking)]
    assert unbook["parent_id"] == span_id(booked)
    assert unbook["attributes"]["durable.step.kind"] == "compensate"
    assert [e["attributes"] for e in unbook["events"] if e["name"] == "durable.compensation"] == [
        {"durable.compensated_step": "book"}
    ]

    (child_id,) = {wid for name, wid in spans if name == "workflow tm_child"}
    child = spans[("workflow tm_child", child_id)]
    assert child["parent_id"] == span_id(spans[("workflow tm_parent", parent)])
    assert spans[("step work", child_id)]["parent_id"] == span_id(child)
