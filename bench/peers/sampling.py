"""A worker process's peak PostgreSQL connections and peak RSS, sampled every 100 ms.

Stdlib + psycopg only: used by the peers (bench/peers/*_bench.py, under bench/.venv-peers)
and by Durable's side (bench/io_bound.py, bench/fanout.py) alike.

A backend belongs to the worker when its `pg_stat_activity.client_port` is the local port
of a TCP socket the worker process holds open to the server's port: the sockets come from
/proc/<pid>/fd (socket inodes) and /proc/<pid>/net/tcp{,6} (ports by inode). This does
not rely on `application_name`, which some clients set themselves (Durable's bus, DBOS),
nor on subtracting the bench driver's own connections. Only the process itself is looked
at, not its children: every worker measured here is one process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

INTERVAL = 0.1
# The bench's clients reach the server over TCP (127.0.0.1 in every URL); a Unix-socket
# connection would show client_port -1 and not be counted.
ACTIVITY = "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s)"


def status_kb(pid: int, field: str) -> int:
    """A `field:` line of /proc/<pid>/status in kB (VmRSS, VmHWM), 0 once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def server_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of the TCP sockets `pid` holds to `server_port`."""
    inodes = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class Sampler:
    """Samples one process in a background thread until `stop()`; then read the peaks."""

    def __init__(self, pid: int, database_url: str | None) -> None:
        self.pid = pid
        self.url = database_url
        self.peak_connections = 0
        self.peak_rss_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        # The kernel's high-water mark catches a peak that fell between two samples.
        self.peak_rss_kb = max(self.peak_rss_kb, status_kb(self.pid, "VmHWM"))

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_kb / 1024

    def _run(self) -> None:
        conn = None
        if self.url:
            import psycopg

            parsed = urlparse(self.url)
            server_port = parsed.port or 5432
            # Not the measured database: the sampler's own backend stays out of its counts
            # anyway (its port is not the worker's), and a dropped database does not end it.
            conn = psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
        try:
            while not self._stop.wait(INTERVAL):
                self.peak_rss_kb = max(self.peak_rss_kb, status_kb(self.pid, "VmRSS"))
                if conn is not None:
                    ports = sorted(server_ports(self.pid, server_port))
                    row = conn.execute(ACTIVITY, [ports]).fetchone() if ports else (0,)
                    self.peak_connections = max(self.peak_connections, int(row[0]) if row else 0)
                self.samples += 1
        finally:
            if conn is not None:
                conn.close()


def log_says_too_many_clients(text: str) -> bool:
    return "too many clients" in text
