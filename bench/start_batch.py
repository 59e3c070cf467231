"""Start N three-no-op workflows from a fresh process, so DURABLE_QUEUE_* env reaches it.

    python bench/start_batch.py N          # prints the seconds the N start() calls took
    python bench/start_batch.py --many N   # start_many() in chunks of 1,000 (each inside a
                                           # caller span when tracing is configured)
    python bench/start_batch.py --check    # prints the queue adapter in effect, as JSON

Run by bench/adapters.py with DATABASE_URL, DURABLE_QUEUE_ADAPTER and DURABLE_QUEUE_OPTIONS
set: the settings are read once per process, so another adapter needs another process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    os.environ.setdefault("DJANGO_DEBUG", "0")  # DEBUG keeps every query in memory
    import django

    django.setup()
    from durable.conf import durable_settings

    if argv == ["--check"]:
        report = {"path": durable_settings.queue_adapter_path, "error": None}
        try:
            durable_settings.queue_adapter_class  # noqa: B018  (imports it)
        except Exception as exc:  # any import failure means "not available"
            report["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(report))
        return 0
    import durable
    from bench.run_workflows import ThreeNoOps

    began = time.perf_counter()
    if argv[0] == "--many":
        # bench/telemetry.py: its rounds measure the workers, not the starts.
        from opentelemetry import trace

        tracer = trace.get_tracer("bench")
        n = int(argv[1])
        for first in range(0, n, 1000):
            with tracer.start_as_current_span("POST /orders"):
                inputs = [{"n": i} for i in range(first, min(first + 1000, n))]
                durable.start_many(ThreeNoOps, inputs)
        print(f"{time.perf_counter() - began:.3f}")
        return 0
    for i in range(int(argv[0])):
        durable.start(ThreeNoOps, {"n": i})
    print(f"{time.perf_counter() - began:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
