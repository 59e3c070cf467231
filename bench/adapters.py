"""The 1-worker throughput row once per queue adapter, side by side.

    .venv/bin/python bench/run.py --only adapters --adapters postgres,redis,rabbitmq,nats
    .venv/bin/python bench/run.py --only adapters --adapters redis=mypkg.queues.MyRedisQueue \\
        --adapter-options 'redis={"url": "redis://127.0.0.1:6379/6"}'

Each adapter is selected for the starting process and the worker processes through the
environment: DURABLE_QUEUE_ADAPTER (a dotted path) and DURABLE_QUEUE_OPTIONS (JSON), read by
testproject/settings.py. Workflows are started by bench/start_batch.py in a fresh process,
since settings are read once per process. Before its round each adapter is checked in such a
process: one that cannot be imported gives an "adapter not available" row; one the settings
ignore (the path in effect differs) gives a row saying so, rather than a postgres figure
under another name.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from bench.support import REPO, worker_env
from bench.throughput import throughput_round

ADAPTERS = {
    "postgres": "durable.queue.postgres.PostgresQueue",
    "database": "durable.queue.database.DatabaseQueue",
    "redis": "durable.queue.redis.RedisQueue",
    "rabbitmq": "durable.queue.rabbitmq.RabbitMQQueue",
    "nats": "durable.queue.nats.NatsQueue",
}
OPTIONS: dict[str, dict[str, Any]] = {
    "redis": {"url": "redis://127.0.0.1:6379/6"},
    "rabbitmq": {"url": "amqp://guest:guest@127.0.0.1:5672/"},
    "nats": {"url": "nats://127.0.0.1:4222"},
}


def parse(spec: str, options: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """`name` or `name=dotted.path`, comma-separated; options as `name=JSON`."""
    given: dict[str, dict[str, Any]] = {}
    for item in options:
        name, _, text = item.partition("=")
        try:
            given[name] = json.loads(text)
        except ValueError as exc:
            raise SystemExit(f"--adapter-options {item!r}: not JSON ({exc})") from exc
    adapters = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        name, _, path = item.partition("=")
        path = path or ADAPTERS.get(name, "")
        if not path:
            raise SystemExit(f"--adapters: unknown adapter {name!r}; use {name}=dotted.path")
        adapters.append((name, path, given.get(name, OPTIONS.get(name, {}))))
    return adapters


def check(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """Why this adapter cannot be measured, or None."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "start_batch.py"), "--check"],
        cwd=REPO,
        env=worker_env(args.database_url, args.poll_interval, env),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"the settings failed to load: {done.stderr.strip().splitlines()[-1:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["path"] != env["DURABLE_QUEUE_ADAPTER"]:
        return (
            f"testproject/settings.py ignores DURABLE_QUEUE_ADAPTER (in effect: {report['path']})"
        )
    if report["error"]:
        return f"adapter not available: {report['error']}"
    return None


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for name, path, options in parse(args.adapters, args.adapter_options):
        env = {"DURABLE_QUEUE_ADAPTER": path, "DURABLE_QUEUE_OPTIONS": json.dumps(options)}
        problem = check(args, env)
        if problem:
            print(f"[adapters] {name}: {problem}", flush=True)
            rows.append({"adapter": name, "path": path, "error": problem})
            continue
        sized = argparse.Namespace(**{**vars(args), "workflows": args.adapter_workflows})
        row = throughput_round(sized, 1, f"adapter-{name}", env)
        rows.append({"adapter": name, "path": path, **row})
    return rows
