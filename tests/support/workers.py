"""Real worker processes for end-to-end tests, pointed at the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.db import connection

REPO = Path(__file__).resolve().parents[2]


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


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> int:
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
    ) -> list[WorkerProcess]:
        started = []
        for _ in range(count):
            index = len(self.processes)
            log = self.log_dir / f"worker-{index}.log"
            env = {
                **os.environ,
                "DATABASE_URL": test_database_url(),
                "DURABLE_POLL_INTERVAL": "0.1",
                "DURABLE_LEASE_SECONDS": str(lease_seconds),
                "DURABLE_WORKFLOW_MODULES": workflow_modules,
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
            args = [sys.executable, str(REPO / "manage.py"), "durable_worker", "-v", "2",
                    "--shutdown-timeout", "5"]
            if queues:
                args += ["--queues", queues]
            if concurrency is not None:
                args += ["--concurrency", str(concurrency)]
            args += list(extra_args)
            with log.open("wb") as out:
                process = subprocess.Popen(args, cwd=REPO, env=env, stdout=out,
                                           stderr=subprocess.STDOUT)
            worker = WorkerProcess(process, log)
            self.processes.append(worker)
            started.append(worker)
        return started

    def logs(self) -> str:
        return "\n".join(f"--- worker {i} ---\n{w.output()}" for i, w in enumerate(self.processes))

    def stop_all(self) -> None:
        for worker in self.processes:
            worker.terminate()
