"""daphne serving testproject.asgi (HTTP and WebSockets) on the test database, for the
browser tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.workers import REPO, wait_until, worker_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def daphne_server(
    log_dir: Path, workflow_modules: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Its base URL while it runs (its output in `log_dir`/daphne.log); stopped after."""
    port = free_port()
    environ = {**worker_env(workflow_modules=workflow_modules), **(env or {})}
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    log = log_dir / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "testproject.asgi:application"],
            cwd=REPO,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"daphne exited:\n{log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=30, message=lambda: f"daphne not up:\n{log.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
