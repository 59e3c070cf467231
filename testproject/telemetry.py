"""OpenTelemetry for the test project's processes, configured from the environment as an
application would in its settings: the SDK with a file or no-op exporter.

- DURABLE_OTEL_SPANS_DIR: each process writes its finished spans, one JSON object a line,
  to spans-<pid>.jsonl in that directory (tests read them back);
- DURABLE_OTEL_EXPORTER=none: spans are made, batched and dropped (the benchmark's
  tracing cost);
- DURABLE_OTEL_PSYCOPG=1: psycopg's instrumentation too (its spans nest under a step's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def configure_from_environment() -> None:
    spans_dir = os.environ.get("DURABLE_OTEL_SPANS_DIR")
    exporter_name = os.environ.get("DURABLE_OTEL_EXPORTER")
    if not spans_dir and exporter_name != "none":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    if spans_dir:
        # Exported as each span ends, line-buffered: on disk when a test looks.
        out = (Path(spans_dir) / f"spans-{os.getpid()}.jsonl").open("a", buffering=1)
        exporter = ConsoleSpanExporter(
            out=out, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        # As in production: spans are queued and exported in batches off the hot path.
        provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(provider)
    if os.environ.get("DURABLE_OTEL_PSYCOPG") == "1":
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument()
