"""The chaos scenario shared by the chaos test and `bench/soak.py`.

Workers run the chaos workflows while a seeded "monkey" SIGKILLs one of them every 0.5-2 s
and starts a replacement. Afterwards `Chaos.check` compares three records that must
agree: the executions and their step rows in the database, and the journal the step
bodies wrote (see tests/crash/workflows.py).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Count

import durable
from durable.models import FINISHED_STATUSES, StepExecution, Task, WorkflowExecution
from tests.crash.workflows import CHAOS_WORKFLOWS, expected_runs
from tests.support.workers import READY_LINE, WorkerPool, WorkerProcess, pid_of

WORKFLOW_MODULES = "tests.crash.workflows"
KILL_EVERY = (0.5, 2.0)  # seconds between two kills, drawn uniformly

RunKey = tuple[str, str, str]  # (workflow_id, step, scope) as the journal writes them


@dataclass
class JournalRun:
    """One run of one step body, as the journal recorded it."""

    key: RunKey
    pid: int
    started_at_line: int
    ended: bool = False


@dataclass
class ChaosReport:
    seed: int
    workflows: int = 0
    step_runs: int = 0  # runs the workflows had to make (one per step, per foreach item)
    body_runs: int = 0  # step bodies started, counting the ones that ran again
    interrupted: int = 0  # bodies that started and never ended: their worker was killed
    discarded: int = 0  # bodies that ended but whose outcome was not checkpointed
    kills: int = 0
    invariants: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"seed {self.seed}: {self.workflows} workflows, {self.step_runs} step runs, "
            f"{self.body_runs} step bodies started, {self.kills} workers SIGKILLed, "
            f"{self.interrupted} steps interrupted and run again, "
            f"{self.discarded} finished bodies discarded",
            f"invariants checked ({len(self.invariants)}):",
            *(f"  - {text}" for text in self.invariants),
        ]
        if self.problems:
            lines += [f"PROBLEMS ({len(self.problems)}):", *(f"  ! {p}" for p in self.problems)]
        return "\n".join(lines)


class Chaos:
    def __init__(
        self,
        pool: WorkerPool,
        *,
        journal: Path,
        seed: int,
        lease_seconds: float = 2,
        database_url: str | None = None,
    ) -> None:
        self.pool = pool
        self.journal = journal
        self.seed = seed
        self.rng = random.Random(seed)
        self.lease_seconds = lease_seconds
        self.database_url = database_url
        self.live: list[WorkerProcess] = []
        self.killed_pids: set[int] = set()
        self.ids: list[str] = []
        self.unexpected_exits: list[str] = []

    # -- running -------------------------------------------------------------------------

    def start_worker(self, *, wait_ready: bool = False) -> WorkerProcess:
        (worker,) = self.pool.start(
            1,
            lease_seconds=self.lease_seconds,
            workflow_modules=WORKFLOW_MODULES,
            database_url=self.database_url,
            wait_ready=wait_ready,
        )
        self.live.append(worker)
        return worker

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.start_worker()
        for worker in self.live:
            worker.wait_ready()

    def start_workflows(self, count: int) -> list[str]:
        """Start `count` chaos workflows, a mix of the three shapes, all ready at once."""
        new = []
        with transaction.atomic():
            for _ in range(count):
                workflow = self.rng.choice(CHAOS_WORKFLOWS)
                data = {
                    "journal": str(self.journal),
                    "pause": self.rng.choice([0.02, 0.1, 0.2, 0.4]),
                    "items": list(range(self.rng.randint(2, 3))),
                }
                new.append(durable.start(workflow, data))
        self.ids += new
        return new

    def unfinished(self) -> int:
        done = WorkflowExecution.objects.filter(
            workflow_id__in=self.ids, status__in=FINISHED_STATUSES
        ).count()
        return len(self.ids) - done

    def rampage(
        self,
        duration: float,
        *,
        until: Callable[[], bool] = lambda: False,
        between_kills: Callable[[], object] = lambda: None,
    ) -> None:
        """SIGKILL a random running worker every 0.5-2 s and start a replacement, for
        `duration` seconds or until `until()` is true; `between_kills` runs after each kill."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline and not until():
            time.sleep(self.rng.uniform(*KILL_EVERY))
            self._replace_dead_workers()
            # Killing a worker still starting up (importing Django) would test nothing.
            ready = [w for w in self.live if READY_LINE in w.output()]
            if not ready:
                continue
            victim = self.rng.choice(ready)
            victim.kill()
            self.killed_pids.add(victim.pid)
            self.live.remove(victim)
            self.start_worker()
            between_kills()

    def _replace_dead_workers(self) -> None:
        """A worker that exits on its own during the chaos is a bug: note it, replace it."""
        for worker in list(self.live):
            if worker.process.poll() is not None:
                self.unexpected_exits.append(
                    f"worker {worker.pid} exited by itself ({worker.process.returncode}):\n"
                    f"{worker.output()[-3000:]}"
                )
                self.live.remove(worker)
                self.start_worker()

    def wait_finished(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.unfinished():
            self._replace_dead_workers()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    # -- checking ------------------------------------------------------------------------

    def check(self) -> ChaosReport:
        report = ChaosReport(seed=self.seed, kills=len(self.killed_pids))
        report.problems += self.unexpected_exits
        report.invariants.append("no worker exited unless the monkey killed it")
        executions = list(WorkflowExecution.objects.filter(workflow_id__in=self.ids))
        report.workflows = len(executions)
        expected = {
            e.workflow_id: expected_runs(e.workflow_name, e.input.get("items", []))
            for e in executions
        }
        report.step_runs = sum(len(runs) for runs in expected.values())
        self._check_executions(executions, expected, report)
        checkpointed = self._check_step_rows(report)
        self._check_journal(expected, checkpointed, report)
        return report

    def _check_executions(
        self,
        executions: list[WorkflowExecution],
        expected: dict[str, list[tuple[str, str]]],
        report: ChaosReport,
    ) -> None:
        report.invariants.append("every workflow completed")
        statuses = Counter(e.status for e in executions)
        if len(executions) != len(self.ids) or statuses != {"completed": len(self.ids)}:
            report.problems.append(f"{len(self.ids)} started, statuses: {dict(statuses)}")
        report.invariants.append(
            "each step's context writes were applied exactly once (trail and counter)"
        )
        for execution in executions:
            runs = expected[execution.workflow_id]
            trail = sorted(execution.context.get("trail", []))
            if trail != sorted(f"{step}/{scope}" for step, scope in runs):
                report.problems.append(f"{execution.workflow_id}: context trail {trail}")
            if execution.context.get("steps_done") != len(runs):
                report.problems.append(
                    f"{execution.workflow_id}: steps_done "
                    f"{execution.context.get('steps_done')} != {len(runs)}"
                )
        report.invariants.append("no task is left in the queue")
        left = Task.objects.filter(execution__workflow_id__in=self.ids).count()
        if left:
            report.problems.append(f"{left} task(s) left in the queue")

    def _check_step_rows(self, report: ChaosReport) -> dict[str, tuple[str, int]]:
        """Returns {run id: (workflow_id, pid)} of the checkpointed step outputs."""
        rows = StepExecution.objects.filter(execution__workflow_id__in=self.ids)
        report.invariants.append(
            "exactly one step row per step run, completed, attempt 1 (a crash is no attempt)"
        )
        if rows.count() != report.step_runs:
            report.problems.append(f"{rows.count()} step rows for {report.step_runs} step runs")
        duplicated = (
            rows.values("execution", "step", "scope_key", "kind")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        for group in duplicated:
            report.problems.append(f"step run recorded {group['n']} times: {group}")
        odd = rows.exclude(status="completed", attempt=1)
        for row in odd.values("execution__workflow_id", "step", "status", "attempt", "error"):
            report.problems.append(f"step row not completed at attempt 1: {row}")
        checkpointed: dict[str, tuple[str, int]] = {}
        for workflow_id, output, worker_id in rows.filter(status="completed").values_list(
            "execution__workflow_id", "output", "worker_id"
        ):
            checkpointed[str(output)] = (workflow_id, pid_of(worker_id))
        return checkpointed

    def _read_journal(self) -> dict[str, JournalRun]:
        runs: dict[str, JournalRun] = {}
        lines = self.journal.read_text().splitlines() if self.journal.exists() else []
        for number, line in enumerate(lines):
            event, workflow_id, step, scope, pid, run = line.split()
            if event == "start":
                runs[run] = JournalRun((workflow_id, step, scope), int(pid), number)
            else:
                runs[run].ended = True
        return runs

    def _check_journal(
        self,
        expected: dict[str, list[tuple[str, str]]],
        checkpointed: dict[str, tuple[str, int]],
        report: ChaosReport,
    ) -> None:
        runs = self._read_journal()
        report.body_runs = len(runs)
        logs = self.pool.logs()
        by_key: defaultdict[RunKey, list[tuple[str, JournalRun]]] = defaultdict(list)
        for run_id, run in runs.items():
            by_key[run.key].append((run_id, run))

        report.invariants.append(
            "the output of every step run is the run id of exactly one journalled body "
            "that started and ended on the worker that checkpointed it"
        )
        for workflow_id, step_runs in expected.items():
            for step, scope in step_runs:
                key = (workflow_id, step, scope)
                winners = [(rid, run) for rid, run in by_key[key] if rid in checkpointed]
                if len(winners) != 1:
                    report.problems.append(f"{key}: {len(winners)} checkpointed bodies")
                    continue
                run_id, run = winners[0]
                if not run.ended or checkpointed[run_id][1] != run.pid:
                    report.problems.append(
                        f"{key}: checkpointed body {run_id} (pid {run.pid}, ended "
                        f"{run.ended}) was recorded by pid {checkpointed[run_id][1]}"
                    )

        report.invariants.append(
            "a body that never ended ran on a killed worker, and its step ran again later "
            "to the checkpoint"
        )
        report.invariants.append(
            "a body that ended without its checkpoint ran on a killed worker, or its "
            "worker logged the checkpoint as rejected (its lease was taken over)"
        )
        for run_id, run in runs.items():
            if run_id in checkpointed:
                continue
            workflow_id, step, _ = run.key
            if not run.ended:
                report.interrupted += 1
                if run.pid not in self.killed_pids:
                    report.problems.append(
                        f"{run.key}: body {run_id} on live pid {run.pid} never ended"
                    )
                rerun = [r for rid, r in by_key[run.key] if rid in checkpointed]
                if not rerun or rerun[0].started_at_line < run.started_at_line:
                    report.problems.append(
                        f"{run.key}: interrupted body {run_id} was not run again afterwards"
                    )
                continue
            report.discarded += 1
            rejected = f"checkpoint rejected: step '{step}' of {workflow_id}"
            if run.pid not in self.killed_pids and rejected not in logs:
                report.problems.append(
                    f"{run.key}: body {run_id} on live pid {run.pid} ended, but its outcome "
                    "was neither checkpointed nor rejected"
                )
