"""Real `durable_worker` processes against the test databases, for end-to-end tests.

    workers = WorkerProcesses()
    workers.start(queues=["default"], concurrency=4)   # returns once each serves
    ...
    workers.stop_all()                                 # SIGTERM (drain), then SIGKILL

Each process is `python -m durable.testing.worker_main`, which loads the project's
settings with the test databases' names (see that module). The test database must be
one a second process can open: PostgreSQL, or SQLite with a file `TEST["NAME"]` (an
in-memory SQLite database exists in the test process only).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.db import connections

from durable.conf import durable_settings
from durable.models import WorkerState
from durable.testing.worker_main import TEST_DATABASES_ENV

READY_TIMEOUT = 60.0


class WorkerProcess:
    """One worker process; its output (stdout and stderr) goes to `log`."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once the worker registered itself (it is about to claim work)."""
        deadline = time.monotonic() + timeout
        using = str(durable_settings.DATABASE)
        while (
            not WorkerState.objects.using(using)
            .filter(pid=self.pid, stopped_at__isnull=True)
            .exists()
        ):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker {self.pid} exited ({self.process.returncode}) before serving:\n"
                    f"{self.output()}"
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"worker {self.pid} did not start serving within {timeout}s:\n{self.output()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (the worker drains), then SIGKILL after `timeout` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


class WorkerProcesses:
    """The worker processes of one test; `stop_all` ends them."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="durable-workers-"))
        self.processes: list[WorkerProcess] = []

    def start(
        self,
        count: int = 1,
        *,
        queues: Sequence[str] = (),
        concurrency: int | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
    ) -> list[WorkerProcess]:
        """Start `count` workers (`durable_worker` options: `queues`, `concurrency`, any
        other `args`); by default return once each one serves."""
        command = [sys.executable, "-m", "durable.testing.worker_main", "-v", "2"]
        if queues:
            command += ["--queues", ",".join(queues)]
        if concurrency is not None:
            command += ["--concurrency", str(concurrency)]
        command += list(args)
        environment = {**os.environ, **_child_environment(), **(env or {})}
        started = []
        for _ in range(count):
            log = self.log_dir / f"worker-{len(self.processes)}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command, env=environment, stdout=out, stderr=subprocess.STDOUT
                )
            worker = WorkerProcess(process, log)
            self.processes.append(worker)
            started.append(worker)
        if wait_ready:
            for worker in started:
                worker.wait_ready()
        return started

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid} ---\n{w.output()}" for w in self.processes)

    def stop_all(self) -> None:
        """SIGTERM every live worker at once, then wait for each (SIGKILL if it hangs)."""
        running = [w for w in self.processes if w.process.poll() is None]
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
        for worker in running:
            worker.stop()


def _child_environment() -> dict[str, str]:
    names = {}
    for alias in connections:
        config = connections[alias].settings_dict
        if config["ENGINE"].endswith("sqlite3") and _in_memory(str(config["NAME"])):
            raise RuntimeError(
                f"database {alias!r} is an in-memory SQLite database, which a worker process "
                "cannot open: set DATABASES[alias]['TEST']['NAME'] to a file name"
            )
        names[alias] = str(config["NAME"])
    return {
        TEST_DATABASES_ENV: json.dumps(names),
        "DJANGO_SETTINGS_MODULE": str(settings.SETTINGS_MODULE),
        # The project and its packages, wherever the test run found them.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "PYTHONUNBUFFERED": "1",
    }


def _in_memory(name: str) -> bool:
    return name == ":memory:" or "mode=memory" in name
