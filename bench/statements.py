"""Statements and commits per no-op step on PostgreSQL, as a worker issues them.

Starts N workflows of three no-op steps (bench/run_workflows.py), then claims and runs them
the way one worker thread does alone (claim one task, run it, follow the chained claims its
checkpoints return), or with --batch B the way a worker's committer does when B steps
finish together (B claimed, run, checkpointed in one batch, durable.store.checkpoint, then the
claims the batch returns), counting every statement inside `CaptureQueriesContext`:

    .venv/bin/python bench/statements.py [--workflows 20] [--batch 8] [--database-url URL]

Prints statements (BEGIN/COMMIT included) and commits per step, and with --show the
statements grouped by their text.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/durable_bench_statements"
    )
    parser.add_argument("--show", action="store_true", help="statements grouped by text")
    parser.add_argument(
        "--batch", type=int, default=0, help="checkpoint this many steps per batch (0: alone)"
    )
    parser.add_argument(
        "--cpu-workflows",
        type=int,
        default=200,
        help="then time this many more without capturing: this process's CPU per step",
    )
    args = parser.parse_args()
    setup_django(args.database_url)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import durable
    from bench.run_workflows import ThreeNoOps
    from durable.engine.adapters import queue_adapter
    from durable.models import ExecutionStatus, StepExecution, WorkflowExecution
    from durable.store.claims import Chain

    for i in range(args.workflows):
        durable.start(ThreeNoOps, {"n": i})
    adapter = queue_adapter()
    chain = Chain("statements", 60.0)
    # Django logs no BEGIN/COMMIT: count the commits of atomic blocks (each one also had a
    # BEGIN, implicit in psycopg), and add both to the statements.
    commits = 0
    commit = connection.commit

    def counting_commit() -> None:
        nonlocal commits
        commits += 1
        commit()

    connection.commit = counting_commit  # type: ignore[method-assign]
    run = (
        (lambda: run_batched(args.batch, chain))
        if args.batch
        else (lambda: run_all(adapter, chain))
    )
    with CaptureQueriesContext(connection) as captured:
        run()
    done = WorkflowExecution.objects.filter(status=ExecutionStatus.COMPLETED).count()
    if done != args.workflows:
        sys.exit(f"only {done}/{args.workflows} workflows completed")
    steps = StepExecution.objects.count()
    sql = [q["sql"] for q in captured.captured_queries]
    connection.commit = commit  # type: ignore[method-assign]
    statements = len(sql) + 2 * commits
    print(f"{steps} steps, {statements} statements (with BEGIN/COMMIT), {commits} commits")
    print(f"per step: {statements / steps:.1f} statements, {commits / steps:.2f} commits")
    if args.cpu_workflows:
        cpu_per_step(args.cpu_workflows, run)
    if args.show:
        groups = collections.Counter(_shape(s) for s in sql)
        for text, n in groups.most_common():
            print(f"{n / steps:6.2f}  {text}")


def run_all(adapter: Any, chain: Any) -> None:
    """Claim and run every ready task the way one worker thread does (chains followed)."""
    from durable.engine.executor import execute

    while claimed := adapter.claim("default", 1, worker_id="statements", lease_seconds=60.0):
        for claim in claimed:
            next_claim = execute(claim, adapter, chain=chain)
            while next_claim is not None:
                next_claim = execute(next_claim, adapter, chain=chain)


def run_batched(size: int, chain: Any) -> None:
    """Claim `size` tasks, run their steps, checkpoint them in one batch, and go on with the
    claims the batch returns (chained steps, or due tasks it claimed), as a committer does."""
    from durable.dsl import registry
    from durable.flow.context import Context
    from durable.store.checkpoint import apply
    from durable.store.claims import claim_tasks
    from durable.store.outcomes import Settled, Succeeded

    while claims := claim_tasks(
        "default", size, worker_id="statements", lease_seconds=60.0, using="default"
    ):
        while claims:
            items = []
            for claim in claims:
                definition = registry.get(claim.workflow_name)
                step = definition.step(claim.step)
                ctx = Context(
                    claim.context,
                    input=claim.input,
                    workflow_id=claim.workflow_id,
                    current_step=step.name,
                    attempt=claim.attempt,
                )
                args = (ctx, claim.token.item) if step.takes_item else (ctx,)
                output = getattr(definition.workflow_class(), step.method)(*args)
                items.append(
                    Succeeded(claim, definition, logs=[], ops=ctx.ops, output=output, chain=chain)
                )
            results = apply(items, using="default")
            claims = [r.chained for r in results if isinstance(r, Settled) and r.chained]


def cpu_per_step(n: int, run: Any) -> None:
    """This process's CPU (Python, psycopg) and wall time per step over `n` more workflows
    run on one thread: the CPU figure bounds what one worker process can do."""
    import durable
    from bench.run_workflows import ThreeNoOps
    from durable.models import StepExecution

    for i in range(n):
        durable.start(ThreeNoOps, {"n": i})
    before = StepExecution.objects.count()
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    steps = StepExecution.objects.count() - before
    print(
        f"one thread, {steps} steps: {1000 * cpu / steps:.2f} ms CPU and "
        f"{1000 * wall / steps:.2f} ms wall per step (CPU ceiling of one process: "
        f"~{steps / cpu:,.0f} steps/s)"
    )


def _shape(sql: str) -> str:
    """A statement's text with its literals blanked, on one line, to group by."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "N", sql)
    sql = re.sub(r"\(N(?:, N)*\)", "(N...)", sql)
    return " ".join(sql.split())[:150]


if __name__ == "__main__":
    main()
