"""The worker's hooks into telemetry: a probe per step attempt it runs.

`Telemetry.begin` answers None when there is nothing to record (no OpenTelemetry SDK
configured, no `--metrics-port`), and the worker then runs the step exactly as without
telemetry. Otherwise the probe starts the attempt's span (made current while the step
runs, so what instrumented libraries do in the step nests under it), counts the start, and
at the checkpoint records what the attempt came to: counters and span status from the
outcome its checkpoint committed, never from one that did not commit.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from durable.store.outcomes import Compensated, Failed, Outcome, Parked, Result, Settled
from durable.telemetry import tracing
from durable.telemetry.metrics import WorkerMetrics

logger = logging.getLogger("durable.worker")


@dataclass
class _Series:
    """The labelled children of one (workflow, step, queue): looked up once."""

    started: Any
    completed: Any
    failed: Any
    retried: Any
    duration: Any


class Telemetry:
    def __init__(self, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._delays: dict[str, Any] = {}

    def begin(self, run: Any) -> Probe | None:
        """A probe for `run` (a durable.engine.executor.Run about to be invoked), or None.
        Telemetry never fails a step: a probe that cannot start is logged and skipped."""
        traced = tracing.enabled()
        if not traced and self.metrics is None:
            return None
        try:
            return Probe(self, run, traced)
        except Exception:
            logger.exception("telemetry: could not start the probe of %s", run.claim.step)
            return None

    def timed_out(self, outcome: Outcome, committed: Future[Result]) -> None:
        """A sync step the worker failed at its deadline (its probe stays with its thread,
        whose late outcome will not commit): count the failure its checkpoint recorded."""
        result = committed.result()
        if self.metrics is None or not isinstance(result, Settled):
            return
        claim = outcome.claim
        series = self.series(claim.workflow_name, claim.step, claim.queue)
        series.duration.observe(outcome.duration_ms / 1000)
        series.failed.inc()
        if result.retry_at is not None:
            series.retried.inc()

    def leases_retaken(self, count: int) -> None:
        if self.metrics is not None and count:
            self.metrics.lease_expiries.inc(count)

    def series(self, workflow: str, step: str, queue: str) -> _Series:
        key = (workflow, step, queue)
        found = self._series.get(key)
        if found is None:
            assert self.metrics is not None
            m = self.metrics
            found = self._series[key] = _Series(
                m.started.labels(*key),
                m.completed.labels(*key),
                m.failed.labels(*key),
                m.retried.labels(*key),
                m.duration.labels(*key),
            )
        return found

    def delay(self, queue: str) -> Any:
        found = self._delays.get(queue)
        if found is None:
            assert self.metrics is not None
            found = self._delays[queue] = self.metrics.start_delay.labels(queue)
        return found


class Probe:
    """One step attempt's span and counts."""

    def __init__(self, telemetry: Telemetry, run: Any, traced: bool) -> None:
        claim = run.claim
        self.claim = claim
        self.step = str(run.step.name)
        self.series: _Series | None = None
        if telemetry.metrics is not None:
            self.series = telemetry.series(claim.workflow_name, self.step, claim.queue)
            self.series.started.inc()
            waited = (timezone.now() - claim.claimed_at).total_seconds()
            telemetry.delay(claim.queue).observe(max(waited, 0.0))
        self.span: Any = None
        self.ran_ns: int | None = None
        self._token: object = None
        if traced:
            self.span = tracing.start_step_span(
                workflow_name=claim.workflow_name,
                workflow_id=claim.workflow_id,
                step=self.step,
                kind=claim.kind,
                attempt=claim.attempt,
                queue=claim.queue,
                stored=claim.trace_context,
            )

    def __enter__(self) -> None:
        """While the step runs, its span is current. The span ends when the step did, not
        when its checkpoint answered (a workflow span ends at the checkpoint that finished
        the run, and contains its steps)."""
        if self.span is not None:
            self._token = tracing.make_current(self.span)

    def __exit__(self, *exc: object) -> None:
        self.ran_ns = time.time_ns()
        if self._token is not None:
            tracing.restore(self._token)

    def end(self, outcome: Outcome, result: Result) -> None:
        """The attempt's checkpoint answered `result` (never raises)."""
        try:
            self._end(outcome, result)
        except Exception:
            logger.exception("telemetry: could not record the end of %s", self.claim.step)

    def _end(self, outcome: Outcome, result: Result) -> None:
        settled = isinstance(result, Settled)
        retry_at = result.retry_at if isinstance(result, Settled) else None
        retried = retry_at is not None
        error = _error_of(outcome)
        if self.series is not None and settled and not isinstance(outcome, Parked):
            self.series.duration.observe(outcome.duration_ms / 1000)
            if error is None:
                self.series.completed.inc()
            else:
                self.series.failed.inc()
                if retried:
                    self.series.retried.inc()
        if self.span is not None:
            self._end_span(outcome, result, error, retry_at)

    def abandon(self) -> None:
        """The worker's own work around the step failed: the attempt ends unrecorded."""
        if self.span is not None:
            try:
                self.span.set_attribute("durable.status", "released")
                tracing.record_error(self.span, None, "the worker could not finish the attempt")
                self.span.end()
            except Exception:
                logger.exception("telemetry: could not end the span of %s", self.claim.step)

    def _end_span(
        self,
        outcome: Outcome,
        result: Result,
        error: dict[str, Any] | None,
        retry_at: datetime | None,
    ) -> None:
        span, claim = self.span, self.claim
        if claim.kind == "compensate":
            span.add_event("durable.compensation", {"durable.compensated_step": claim.step})
        if not isinstance(result, Settled):
            # Not committed: the lease was lost, or the database is away; it runs again.
            span.add_event("durable.released", {"durable.reason": type(result).__name__})
            span.set_attribute("durable.status", "released")
            span.end(end_time=self.ran_ns)
            return
        if isinstance(outcome, Parked) and outcome.wait is not None:
            wait = outcome.wait
            attributes: dict[str, Any] = {"durable.wait.kind": wait.kind}
            if wait.name:
                attributes["durable.wait.name"] = wait.name
            if wait.deadline is not None:
                attributes["durable.wait.until"] = wait.deadline.isoformat()
            span.add_event("durable.wait", attributes)
            status = "waiting"
        elif error is not None:
            if retry_at is not None:
                span.add_event(
                    "durable.retry",
                    {
                        "durable.retry_at": retry_at.isoformat(),
                        "durable.next_attempt": claim.attempt + 1,
                    },
                )
            status = "retrying" if retry_at is not None else "failed"
            tracing.record_error(span, error, f"{error.get('type')}: {error.get('message')}")
        else:
            status = "completed"
        span.set_attribute("durable.status", status)
        span.end(end_time=self.ran_ns)


def _error_of(outcome: Outcome) -> dict[str, Any] | None:
    if isinstance(outcome, Failed):
        return outcome.error or {"type": "Error", "message": ""}
    if isinstance(outcome, Compensated):
        return outcome.error
    return None
