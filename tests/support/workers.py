"""Real worker processes for end-to-end tests, pointed at the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.db import connection

REPO = Path(__file__).resolve().parents[2]
# The line `Worker.run` logs once it is about to claim work.
READY_LINE = "serving"


def test_database_url() -> str:
    """A DATABASE_URL for the database the test run is using (after test-DB setup)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    user = quote(config.get("USER") or "postgres")
    password = f":{quote(config['PASSWORD'])}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


def worker_env(
    *,
    lease_seconds: float = 30,
    workflow_modules: str = "tests.e2e.workflows",
    database_url: str | None = None,
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url or test_database_url(),
        "DURABLE_POLL_INTERVAL": "0.1",
        "DURABLE_LEASE_SECONDS": str(lease_seconds),
        "DURABLE_WORKFLOW_MODULES": workflow_modules,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }


def pid_of(worker_id: str) -> int:
    """The process id inside a worker id (`host:pid:suffix`)."""
    return int(worker_id.split(":")[-2])


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        """Wait until the worker has logged `text`; fail with its log if it never does."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker {self.pid} exited ({self.process.returncode}) before logging "
                    f"{text!r}:\n{self.output()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"worker {self.pid} did not log {text!r} within {timeout}s:\n{self.output()}"
                )
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_for_output(READY_LINE, timeout)

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process freezes where it is (no heartbeats) until `resume`."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if the worker has not exited within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


class WorkerPool:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[WorkerProcess] = []

    def start(
        self,
        count: int = 1,
        *,
        queues: str = "",
        concurrency: int | None = None,
        lease_seconds: float = 30,
        workflow_modules: str = "tests.e2e.workflows",
        extra_args: tuple[str, ...] = (),
        wait_ready: bool = True,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
    ) -> list[WorkerProcess]:
        """Start `count` workers; by default return once each is claiming work.

        `env` adds to the workers' environment; `database_url` points them at another
        database than the test database.
        """
        started = []
        env = {
            **worker_env(
                lease_seconds=lease_seconds,
                workflow_modules=workflow_modules,
                database_url=database_url,
            ),
            **(env or {}),
        }
        for _ in range(count):
            index = len(self.processes)
            log = self.log_dir / f"worker-{index}.log"
            args = [
                sys.executable,
                str(REPO / "manage.py"),
                "durable_worker",
                "-v",
                "2",
                "--shutdown-timeout",
                "5",
            ]
            if queues:
                args += ["--queues", queues]
            if concurrency is not None:
                args += ["--concurrency", str(concurrency)]
            args += list(extra_args)
            with log.open("wb") as out:
                process = subprocess.Popen(
                    args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            worker = WorkerProcess(process, log)
            self.processes.append(worker)
            started.append(worker)
        if wait_ready:
            for worker in started:
                worker.wait_ready()
        return started

    def run_command(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run `manage.py durable_worker ARGS` to completion (for commands that must fail)."""
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "durable_worker", *args],
            cwd=REPO,
            env=worker_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def logs(self) -> str:
        return "\n".join(f"--- worker {i} ---\n{w.output()}" for i, w in enumerate(self.processes))

    def stop_all(self) -> None:
        """SIGTERM every live worker at once (a second SIGTERM would skip the drain)."""
        running = [w for w in self.processes if w.process.poll() is None]
        for worker in running:
            worker.resume()  # a paused worker would not act on SIGTERM
            worker.process.send_signal(signal.SIGTERM)
        for worker in running:
            try:
                worker.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()


def wait_until(
    condition: Callable[[], object], *, timeout: float, message: str | Callable[[], str]
) -> None:
    """Poll `condition` until it is truthy; fail with `message` after `timeout` seconds.

    `message` may be a callable, so it can describe the state at the time of failure.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {timeout}s)")
        time.sleep(0.05)
