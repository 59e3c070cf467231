"""Brokers restarted under running workers, losing their data: no workflow is lost.

NATS runs as a private server this test starts (and kills) on a port of its own. The
RabbitMQ test restarts the shared broker (`rabbitmqctl stop_app` / `start_app`), which
briefly disrupts everyone using it, so it only runs with DURABLE_TEST_RABBITMQ_RESTART=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

import durable
from durable.models import WorkflowExecution
from durable.testing import assert_workflow_completed
from tests.bus.conftest import require_server
from tests.queue.brokers import delete_everything, lose_messages
from tests.queue.conftest import adapter_settings
from tests.queue.test_workers import Broker
from tests.queue.workflows import Hops
from tests.support.workers import WorkerPool, wait_until

pytestmark = pytest.mark.e2e
NATS_SERVER = "/usr/sbin/nats-server"


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("broker end-to-end tests run in the PostgreSQL test run")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateNats:
    """A nats-server with JetStream that only this test uses."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"nats-server did not listen on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    if not Path(NATS_SERVER).exists():
        problem = f"{NATS_SERVER} is not installed"
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    server = PrivateNats(tmp_path / "jetstream")
    server.start()
    yield server
    server.kill()


def start_hops(broker: Broker, workers: WorkerPool, count: int = 20) -> list[str]:
    workers.start(2, env=broker.env, workflow_modules="tests.e2e.workflows,tests.queue.workflows")
    wids = [durable.start(Hops, {"nap": 1, "timeout": 2}) for _ in range(count)]
    wait_until(
        lambda: (
            WorkflowExecution.objects.filter(workflow_id__in=wids, status="waiting").count() >= 5
        ),
        timeout=60,
        message=workers.logs,
    )
    return wids


def test_nats_killed_and_restarted_without_its_data_loses_no_workflow(
    private_nats: PrivateNats, workers: WorkerPool, settings: Any, queue_prefix: str
) -> None:
    path, options = adapter_settings(
        "nats",
        queue_prefix,
        url=f"nats://127.0.0.1:{private_nats.port}",
        reconcile_interval=1,
        reconcile_grace=1,
    )
    settings.DURABLE = {**settings.DURABLE, "QUEUE_ADAPTER": path, "QUEUE_OPTIONS": options}
    broker = Broker("nats", path, options)
    wids = start_hops(broker, workers)

    private_nats.kill()
    shutil.rmtree(private_nats.store, ignore_errors=True)
    time.sleep(1)  # workers see the connection drop and keep retrying
    private_nats.start()

    for wid in wids:
        assert assert_workflow_completed(wid, timeout=90).result == "timed out", workers.logs()
    assert "reconciler" in workers.logs()


@pytest.mark.skipif(
    os.environ.get("DURABLE_TEST_RABBITMQ_RESTART") != "1",
    reason="restarts the shared RabbitMQ; set DURABLE_TEST_RABBITMQ_RESTART=1",
)
def test_rabbitmq_restarted_and_emptied_loses_no_workflow(
    workers: WorkerPool, settings: Any, queue_prefix: str
) -> None:
    require_server("rabbitmq", ("127.0.0.1", 5672))
    path, options = adapter_settings(
        "rabbitmq", queue_prefix, reconcile_interval=1, reconcile_grace=1
    )
    settings.DURABLE = {**settings.DURABLE, "QUEUE_ADAPTER": path, "QUEUE_OPTIONS": options}
    broker = Broker("rabbitmq", path, options)
    wids = start_hops(broker, workers)

    try:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    adapter = broker.adapter()
    try:
        lose_messages(adapter)  # durable queues survive a restart: empty ours as well
    finally:
        adapter.close()

    try:
        for wid in wids:
            assert assert_workflow_completed(wid, timeout=120).result == "timed out", workers.logs()
    finally:
        workers.stop_all()
        cleaner = broker.adapter()
        delete_everything(cleaner)
        cleaner.close()
