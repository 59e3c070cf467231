"""Soak test: the chaos scenario of tests/crash/test_chaos.py for as long as you like.

    .venv/bin/python bench/soak.py --duration 600
    .venv/bin/python bench/soak.py --duration 600 \\
        --database-url postgres://postgres@127.0.0.1:5432/durable_soak   # an existing database

Worker processes run the chaos workflows while one of them is SIGKILLed every 0.5-2 s and
replaced; workflows are topped up so there is always work in flight. After `--duration`
seconds the killing stops, the workflows finish, and every invariant of the chaos test is
checked. Exits 1 if any fails. Logs and the step journal stay in var/soak-<time>/.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKLOG = 100  # workflows kept unfinished while the monkey is at work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, required=True, help="seconds of chaos")
    parser.add_argument(
        "--database-url",
        default="sqlite:///var/soak.sqlite3",
        help="the database to run on (migrated first); default: var/soak.sqlite3",
    )
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--lease-seconds", type=float, default=2)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.duration <= 0 or args.workers < 1 or args.lease_seconds <= 0:
        parser.error("--duration, --workers and --lease-seconds must be positive")

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["DURABLE_WORKFLOW_MODULES"] = "tests.crash.workflows"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    from tests.crash.chaos import Chaos
    from tests.support.workers import WorkerPool

    call_command("migrate", verbosity=0)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    run_dir = REPO / "var" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    print(f"soak: seed {seed}, {args.duration:g}s of chaos on {args.database_url}; in {run_dir}")

    pool = WorkerPool(run_dir)
    chaos = Chaos(
        pool,
        journal=run_dir / "journal",
        seed=seed,
        lease_seconds=args.lease_seconds,
        database_url=args.database_url,
    )
    began = time.monotonic()

    def top_up() -> None:
        unfinished = chaos.unfinished()
        if unfinished < BACKLOG:
            chaos.start_workflows(BACKLOG)
            print(
                f"  {time.monotonic() - began:6.0f}s: {len(chaos.ids)} workflows started, "
                f"{len(chaos.killed_pids)} workers killed",
                flush=True,
            )

    try:
        chaos.start_workers(args.workers)
        top_up()
        chaos.rampage(args.duration, between_kills=top_up)
        print(f"soak: chaos over; waiting for {chaos.unfinished()} unfinished workflows")
        finished = chaos.wait_finished(timeout=max(300.0, args.duration))
        report = chaos.check()
    finally:
        pool.stop_all()

    print(report.describe())
    if not finished:
        print(f"FAILED: {chaos.unfinished()} workflows did not finish")
        return 1
    if report.problems:
        print("FAILED")
        return 1
    print(f"OK in {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
