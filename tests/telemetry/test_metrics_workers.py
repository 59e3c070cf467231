"""Prometheus metrics of a real worker (`durable_worker --metrics-port`), scraped over HTTP
and parsed with prometheus_client's own parser."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import durable
import durable.queues
from durable.testing import assert_workflow_completed, assert_workflow_failed
from tests.crash.test_fencing import pause_between_transactions
from tests.support.workers import WorkerPool, wait_until
from tests.telemetry import workflows as wf

pytestmark = pytest.mark.e2e

MODULES = "tests.telemetry.workflows"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def step_labels(workflow: str, step: str) -> dict[str, str]:
    return {"workflow": workflow, "step": step, "queue": "default"}


def test_a_scrape_counts_exactly_the_work_a_worker_did(workers: WorkerPool) -> None:
    port = free_port()
    workers.start(
        1,
        queues="default,payments",
        workflow_modules=MODULES,
        extra_args=("--metrics-port", str(port)),
    )
    counted = durable.start_many(wf.Counted, [{"n": i} for i in range(5)])
    failing = durable.start(wf.AlwaysFails, {})
    for wid in counted:
        assert_workflow_completed(wid, timeout=30)
    assert_workflow_failed(failing, timeout=30)
    # The counters move once the checkpoint's result reaches the step's coroutine.
    doomed = step_labels("tm_always_fails", "doomed")
    wait_until(
        lambda: value(scrape(port), "durable_steps_failed_total", **doomed) == 2,
        timeout=10,
        message=workers.logs,
    )

    samples = scrape(port)
    assert all(name.startswith("durable_") for name, _ in samples)
    for step in ("one", "two"):
        labels = step_labels("tm_counted", step)
        assert value(samples, "durable_steps_started_total", **labels) == 5
        assert value(samples, "durable_steps_completed_total", **labels) == 5
        assert value(samples, "durable_steps_failed_total", **labels) == 0
        assert value(samples, "durable_step_duration_seconds_count", **labels) == 5
    assert value(samples, "durable_steps_started_total", **doomed) == 2
    assert value(samples, "durable_steps_completed_total", **doomed) == 0
    assert value(samples, "durable_steps_failed_total", **doomed) == 2
    assert value(samples, "durable_steps_retried_total", **doomed) == 1
    assert value(samples, "durable_step_claim_to_start_seconds_count", queue="default") == 12
    finished = "durable_workflows_finished_total"
    assert value(samples, finished, workflow="tm_counted", status="completed") == 5
    assert value(samples, finished, workflow="tm_always_fails", status="failed") == 1
    assert value(samples, "durable_lease_expiries_total") == 0
    assert value(samples, "durable_worker_capacity", queue="default") == 8
    assert value(samples, "durable_worker_capacity", queue="payments") == 2
    assert value(samples, "durable_worker_in_flight", queue="default") == 0
    assert value(samples, "durable_queue_ready_tasks", queue="default") == 0
    # No label holds an id: only workflow, step, queue and status names.
    label_names = {name for _, labels in samples for name, _ in labels}
    assert label_names <= {"workflow", "step", "queue", "status", "le"}


def test_the_oldest_ready_age_rises_while_a_queue_is_paused(workers: WorkerPool) -> None:
    port = free_port()
    workers.start(
        1,
        queues="default,payments",
        workflow_modules=MODULES,
        extra_args=("--metrics-port", str(port)),
    )
    durable.queues.pause("payments")
    wid = durable.start(wf.Counted, {}, queue="payments")

    first = scrape(port)
    assert value(first, "durable_queue_ready_tasks", queue="payments") == 1
    time.sleep(1.5)
    second = scrape(port)
    age = "durable_queue_oldest_ready_age_seconds"
    assert value(second, age, queue="payments") >= value(first, age, queue="payments") + 1
    assert value(second, age, queue="default") == 0
    assert durable.get_execution(wid).status == "pending"

    durable.queues.resume("payments")
    assert_workflow_completed(wid, timeout=30)


def test_a_taken_metrics_port_stops_the_worker_with_a_clear_error(
    workers: WorkerPool,
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = workers.run_command("--metrics-port", str(port))
    assert done.returncode != 0
    assert f"--metrics-port {port}: Address already in use" in done.stderr


@pytest.mark.parametrize("port", ["0", "70000"])
def test_a_metrics_port_out_of_range_is_refused(workers: WorkerPool, port: str) -> None:
    done = workers.run_command("--metrics-port", port)
    assert done.returncode != 0
    assert "--metrics-port must be between 1 and 65535" in done.stderr


def test_lease_expiries_are_counted_by_the_worker_that_takes_the_work_back(
    workers: WorkerPool, tmp_path: Path
) -> None:
    (frozen,) = workers.start(1, workflow_modules=MODULES, lease_seconds=2)
    marker = tmp_path / "started"
    wid = durable.start(wf.Stuck, {"marker": str(marker)})
    wait_until(marker.exists, timeout=30, message=workers.logs)
    pause_between_transactions(frozen)
    port = free_port()
    workers.start(
        1, workflow_modules=MODULES, lease_seconds=2, extra_args=("--metrics-port", str(port))
    )
    assert_workflow_completed(wid, timeout=30)
    frozen.kill()

    samples = scrape(port)
    assert value(samples, "durable_lease_expiries_total") == 1
    hang = step_labels("tm_stuck", "hang")
    assert value(samples, "durable_steps_started_total", **hang) == 1
    assert value(samples, "durable_steps_completed_total", **hang) == 1


def test_a_sync_step_failed_at_its_deadline_counts_once(workers: WorkerPool) -> None:
    port = free_port()
    workers.start(1, workflow_modules=MODULES, extra_args=("--metrics-port", str(port)))
    wid = durable.start(wf.Slow, {})
    assert_workflow_failed(wid, timeout=30)
    crawl = step_labels("tm_slow", "crawl")
    wait_until(
        lambda: value(scrape(port), "durable_steps_failed_total", **crawl) == 1,
        timeout=10,
        message=workers.logs,
    )
    # The abandoned thread returns later; its outcome does not commit and counts nothing.
    time.sleep(3)
    samples = scrape(port)
    assert value(samples, "durable_steps_started_total", **crawl) == 1
    assert value(samples, "durable_steps_failed_total", **crawl) == 1
    assert value(samples, "durable_steps_completed_total", **crawl) == 0
    assert value(samples, "durable_steps_retried_total", **crawl) == 0
    assert (
        value(samples, "durable_workflows_finished_total", workflow="tm_slow", status="failed") == 1
    )
