"""Prometheus metrics (`durable[prometheus]`): what a worker did, and the queues' backlog.

`durable_worker --metrics-port PORT` serves them at `/metrics` (`serve`); the web process can
serve the backlog gauges too (durable.web.metrics). Every name starts `durable_`; labels are
workflow, step and queue names (and a final status), never ids, so their number stays
bounded by the code, not by the traffic.

Counters and histograms are counted by the worker's hooks (durable.engine.telemetry) from
the outcomes its checkpoints committed, so they match the work done. The backlog gauges
are read from the database when scraped, at most once per `BACKLOG_SECONDS`; the age of a
queue's oldest ready task is computed at each scrape from the due time read then, so it
keeps rising while nothing claims it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections
from django.dispatch import Signal
from django.utils import timezone

from durable.signals import workflow_cancelled, workflow_completed, workflow_failed
from durable.store import queries

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError:  # durable[prometheus] is not installed
    CollectorRegistry = None  # type: ignore[assignment,misc]
    Collector = object  # type: ignore[assignment,misc]

INSTALL_HINT = "Prometheus metrics need prometheus-client: pip install 'durable[prometheus]'"
# How long the backlog read from the database is reused (by every scrape meanwhile).
BACKLOG_SECONDS = 5.0
STEP_LABELS = ("workflow", "step", "queue")
# Steps last from milliseconds to hours.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
# A claimed step waits for a thread or the event loop: normally well under a second.
DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FINAL_SIGNALS: tuple[Signal, ...] = (workflow_completed, workflow_failed, workflow_cancelled)


def available() -> bool:
    return CollectorRegistry is not None


class Backlog(Collector):
    """Gauges read from the database: ready tasks and the age of the oldest per queue, and
    waiting executions per workflow."""

    def __init__(
        self, queues: Callable[[], Sequence[str]], using: str, *, own_thread: bool = False
    ) -> None:
        self.queues = queues
        self.using = using
        # Scrapes of a worker's server each run on a thread of their own, which must not
        # leave its connection behind; the web view's request closes its own.
        self.own_thread = own_thread
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._backlog: dict[str, tuple[int, Any]] = {}
        self._waiting: dict[str, int] = {}

    def collect(self) -> Iterable[Any]:
        queues = list(self.queues())
        self._refresh(queues)
        now = timezone.now()
        ready = GaugeMetricFamily(
            "durable_queue_ready_tasks", "Tasks due and waiting for a worker.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "durable_queue_oldest_ready_age_seconds",
            "Seconds the oldest ready task of the queue has been due (0: none is).",
            labels=["queue"],
        )
        for queue in queues:
            count, oldest = self._backlog.get(queue, (0, None))
            ready.add_metric([queue], count)
            age.add_metric([queue], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        waiting = GaugeMetricFamily(
            "durable_executions_waiting",
            "Executions waiting on a sleep, an event, input or a child workflow.",
            labels=["workflow"],
        )
        for workflow, count in sorted(self._waiting.items()):
            waiting.add_metric([workflow], count)
        return [ready, age, waiting]

    def _refresh(self, queues: list[str]) -> None:
        with self._lock:
            if time.monotonic() - self._read_at < BACKLOG_SECONDS:
                return
            try:
                self._backlog = queries.queue_backlog(queues, timezone.now(), self.using)
                self._waiting = queries.waiting_executions(self.using)
            finally:
                if self.own_thread:
                    connections.close_all()
            self._read_at = time.monotonic()


class WorkerMetrics:
    """The metrics of one worker process, in a registry of their own."""

    def __init__(
        self,
        *,
        capacity: dict[str, int],
        in_flight: Callable[[], dict[str, int]],
        using: str,
    ) -> None:
        if CollectorRegistry is None:
            raise RuntimeError(INSTALL_HINT)
        self.registry = registry = CollectorRegistry()
        self.started = Counter(
            "durable_steps_started", "Step attempts started.", STEP_LABELS, registry=registry
        )
        self.completed = Counter(
            "durable_steps_completed",
            "Step attempts that succeeded.",
            STEP_LABELS,
            registry=registry,
        )
        self.failed = Counter(
            "durable_steps_failed",
            "Step attempts that failed (those retried included).",
            STEP_LABELS,
            registry=registry,
        )
        self.retried = Counter(
            "durable_steps_retried",
            "Failed step attempts scheduled to run again.",
            STEP_LABELS,
            registry=registry,
        )
        self.workflows = Counter(
            "durable_workflows_finished",
            "Executions this worker brought to a final status.",
            ("workflow", "status"),
            registry=registry,
        )
        self.lease_expiries = Counter(
            "durable_lease_expiries",
            "Claims whose worker stopped renewing its lease, taken back by this worker.",
            registry=registry,
        )
        self.duration = Histogram(
            "durable_step_duration_seconds",
            "How long step attempts ran.",
            STEP_LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.start_delay = Histogram(
            "durable_step_claim_to_start_seconds",
            "From a step's claim to its start on this worker.",
            ("queue",),
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        registry.register(_Slots(capacity, in_flight))
        registry.register(Backlog(lambda: list(capacity), using, own_thread=True))
        self._server: Any = None

    def listen(self) -> None:
        """Count the executions this process finishes (their lifecycle signals)."""
        for signal in FINAL_SIGNALS:
            signal.connect(self._finished, dispatch_uid=f"durable-metrics-{id(self)}")

    def close(self) -> None:
        for signal in FINAL_SIGNALS:
            signal.disconnect(dispatch_uid=f"durable-metrics-{id(self)}")
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve `/metrics` on `port` from a daemon thread (OSError: the port is taken)."""
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(port, addr=addr, registry=self.registry)

    def _finished(self, sender: Any, event: dict[str, Any], **kwargs: Any) -> None:
        status = str(event.get("status") or event["event"].removeprefix("workflow_"))
        self.workflows.labels(str(event["workflow_name"]), status).inc()


class _Slots(Collector):
    """This worker's capacity and in-flight steps per queue, read when scraped."""

    def __init__(self, capacity: dict[str, int], in_flight: Callable[[], dict[str, int]]) -> None:
        self.capacity = capacity
        self.in_flight = in_flight

    def collect(self) -> Iterable[Any]:
        running = self.in_flight()
        capacity = GaugeMetricFamily(
            "durable_worker_capacity", "Steps this worker runs at once.", labels=["queue"]
        )
        busy = GaugeMetricFamily(
            "durable_worker_in_flight", "Steps this worker is running.", labels=["queue"]
        )
        for queue, slots in self.capacity.items():
            capacity.add_metric([queue], slots)
            busy.add_metric([queue], running.get(queue, 0))
        return [capacity, busy]


def backlog_registry(queues: Callable[[], Sequence[str]], using: str) -> Any:
    """A registry with the backlog gauges alone (for the web process's metrics view)."""
    if CollectorRegistry is None:
        raise RuntimeError(INSTALL_HINT)
    registry = CollectorRegistry()
    registry.register(Backlog(queues, using))
    return registry
