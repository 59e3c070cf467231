"""The worker loop: claim ready steps per queue, run them in threads, keep leases alive.

One main thread claims and does housekeeping (heartbeats, retaking expired leases,
failing sync steps that pass their timeout); a thread pool runs steps, and async steps go
to the shared event loop. An idle worker sleeps until its queue adapter wakes it, the
next delayed task falls due, or the poll interval passes.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.db import close_old_connections
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl import registry
from durable.engine.executor import execute
from durable.engine.groupcommit import GroupCommit
from durable.engine.reconciler import Reconciler
from durable.exceptions import LeaseLost, StepTimeout, WorkflowNotFound
from durable.queue.base import QueueAdapter
from durable.store import checkpoints, claims, deploys, retention
from durable.store.claims import Chain
from durable.store.records import ClaimedTask, error_record

logger = logging.getLogger("durable.worker")


# Seconds an idle worker trusts its cached next due time without a wake-up.
NEXT_DUE_REFRESH = 30.0
# How many steps a thread runs in a row by claiming each one's next step in its checkpoint
# before going back to the queue, where other executions (and higher priorities) wait.
MAX_CHAIN = 16


def resident_memory_mb() -> float:
    """This process's resident set size, read from /proc (Linux), in MB."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        import resource

        # Elsewhere fall back to the peak, which only overstates.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def new_worker_id() -> str:
    """Unique per process (not per host): hostname, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class InFlight:
    claim: ClaimedTask
    deadline: float | None  # monotonic; sync steps only
    timed_out: bool = False


@dataclass
class WorkerStats:
    claimed: int = 0
    finished: int = 0
    errors: list[str] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        queues: dict[str, int],
        *,
        adapter: QueueAdapter,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        shutdown_timeout: float = 30.0,
        worker_id: str | None = None,
        max_tasks: int | None = None,
        max_memory_mb: float | None = None,
    ) -> None:
        if not queues:
            raise ValueError("a worker needs at least one queue")
        self.queues = dict(queues)
        self.adapter = adapter
        self.lease_seconds = float(lease_seconds)
        self.poll_interval = float(poll_interval)
        self.shutdown_timeout = float(shutdown_timeout)
        self.worker_id = worker_id or new_worker_id()
        # Recycling: after this many tasks, or above this resident memory, the worker drains
        # and exits (status 0) so a process supervisor can start a fresh one.
        self.max_tasks = max_tasks
        self.max_memory_mb = max_memory_mb
        self.stats = WorkerStats()
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._in_flight: dict[int, InFlight] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=sum(self.queues.values()), thread_name_prefix="durable-step"
        )
        self._next_heartbeat = 0.0
        self._next_reap = 0.0
        # The next delayed task's due time, looked up again only when something may have
        # changed it (work claimed or finished, a wake-up) or it passed: an idle worker
        # polls with the claim query alone. Due work is found by that claim within one
        # poll interval anyway; this only lets the worker wake up earlier for it.
        self._next_due: datetime | None = None
        self._next_due_checked = -float("inf")
        self._next_due_stale = True
        # Retention runs off the main loop (it may delete many batches) with some jitter,
        # so a fleet of workers started together does not clean up in lockstep.
        self._next_cleanup = time.monotonic() + random.uniform(30, 90)
        self._cleanup_thread: threading.Thread | None = None
        # Checkpoints of steps finishing together share a transaction (PostgreSQL).
        batch_size = int(durable_settings.CHECKPOINT_BATCH)
        self._committer = GroupCommit(adapter.using, batch_size) if batch_size > 1 else None
        # Broker adapters only: publishes ready tasks again that the broker lost.
        self._reconciler = Reconciler(adapter, list(self.queues))
        # Step threads still running when `run` returned (released or timed out): the
        # process must exit without joining them.
        self.abandoned_steps = 0

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        logger.info(
            "worker %s serving %s",
            self.worker_id,
            ", ".join(f"{q} (x{n})" for q, n in self.queues.items()),
        )
        self._revive_parked()
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                claimed = self._claim_round()
                self._housekeeping()
                idle_timeout = None if claimed else self._idle_timeout()
                backoff = 0.5
            except Exception as exc:
                # The database went away: keep the in-flight steps, reconnect, try again.
                logger.warning("worker loop error (%s); retrying in %.1fs", exc, backoff)
                close_old_connections()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._check_recycle()
            if claimed:
                self._next_due_stale = True
            if idle_timeout is not None and not self.stopping.is_set():
                self.adapter.wait_for_work(list(self.queues), idle_timeout, self.wake)
                if self.wake.is_set():
                    self._next_due_stale = True
        self._drain()

    def _revive_parked(self) -> None:
        """After a deploy, executions parked for a missing step may have it back."""
        try:
            # Revived tasks are announced (and published to a broker) by the store.
            revived = deploys.revive_parked(using=self.adapter.using)
            if revived:
                logger.info("revived parked executions on queue(s) %s", ", ".join(sorted(revived)))
        except Exception as exc:
            logger.warning("could not revive executions needing attention: %s", exc)

    def stop(self) -> None:
        """Stop claiming; `run` then waits for in-flight steps and returns."""
        self.stopping.set()
        self.wake.set()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.shutdown_timeout
        while self._in_flight and time.monotonic() < deadline:
            try:
                self._housekeeping()
            except Exception as exc:
                # Keep draining: the steps may still finish, and their leases then expire.
                logger.warning("housekeeping failed while draining (%s)", exc)
                close_old_connections()
            time.sleep(0.05)
        with self._lock:
            left = [entry.claim for entry in self._in_flight.values()]
        for claim in left:
            logger.warning(
                "releasing %s of %s unfinished at shutdown", claim.step, claim.workflow_id
            )
            try:
                self.adapter.nack(claim)
            except Exception:
                logger.exception("could not release %s; its lease will expire", claim.step)
        self.abandoned_steps = len(left)
        if self._committer is not None:
            # Abandoned steps that finish later are checkpointed alone (their leases
            # were given back, so those checkpoints are rejected).
            self._committer.close(timeout=self.shutdown_timeout)
        self._pool.shutdown(wait=not left, cancel_futures=True)
        logger.info("worker %s stopped", self.worker_id)

    # -- claiming ------------------------------------------------------------------------

    def _check_recycle(self) -> None:
        if self.max_tasks is not None and self.stats.claimed >= self.max_tasks:
            logger.warning(
                "recycling: %d tasks claimed (--max-tasks %d); draining",
                self.stats.claimed,
                self.max_tasks,
            )
            self.stop()
            return
        if self.max_memory_mb is not None:
            rss = resident_memory_mb()
            if rss > self.max_memory_mb:
                logger.warning(
                    "recycling: resident memory %.0f MB is over --max-memory %.0f MB; draining",
                    rss,
                    self.max_memory_mb,
                )
                self.stop()

    def _claim_round(self) -> bool:
        self.wake.clear()
        claimed_any = False
        for queue, concurrency in self.queues.items():
            with self._lock:
                free = concurrency - self._running[queue]
            if self.max_tasks is not None:
                free = min(free, self.max_tasks - self.stats.claimed)
            if free <= 0:
                continue
            for claim in self.adapter.claim(
                queue, free, worker_id=self.worker_id, lease_seconds=self.lease_seconds
            ):
                claimed_any = True
                self._submit(claim)
        return claimed_any

    def _submit(self, claim: ClaimedTask) -> None:
        self._track(claim)
        self._pool.submit(self._run, claim)

    def _track(self, claim: ClaimedTask) -> None:
        entry = InFlight(claim, self._sync_deadline(claim))
        with self._lock:
            self._running[claim.queue] = self._running.get(claim.queue, 0) + 1
            self._in_flight[claim.task_id] = entry
            self.stats.claimed += 1

    def _run(self, claim: ClaimedTask) -> None:
        """Run `claim` and the claims its checkpoints return: the next step of its execution
        (at most MAX_CHAIN in a row), or a due task of the queue taken in a batch
        checkpoint for a thread whose execution went no further (durable.store.batch)."""
        links = 0
        while True:
            chained = None
            try:
                chained = execute(
                    claim, self.adapter, chain=self._chain(links), committer=self._committer
                )
            finally:
                # The next claim is counted before this one is let go, so the slot it
                # holds is never seen free.
                if chained is not None:
                    self._track(chained)
                self._finished(claim, chained=chained is not None)
            if chained is None:
                return
            # A claim taken from the queue is as fair as the claim loop's: only steps of
            # one execution in a row count towards the limit.
            links = links + 1 if chained.execution_pk == claim.execution_pk else 0
            claim = chained

    def _chain(self, links: int) -> Chain | None:
        """Leave to chain another step, unless the chain is long enough already."""
        if links >= MAX_CHAIN:
            return None
        return Chain(self.worker_id, self.lease_seconds, allowed=self._may_claim_more)

    def _may_claim_more(self) -> bool:
        # Asked at the checkpoint, not when the step started: a stop or the --max-tasks
        # count may have come meanwhile.
        if self.stopping.is_set():
            return False
        return self.max_tasks is None or self.stats.claimed < self.max_tasks

    def _finished(self, claim: ClaimedTask, *, chained: bool = False) -> None:
        with self._lock:
            self._running[claim.queue] -= 1
            self._in_flight.pop(claim.task_id, None)
            self.stats.finished += 1
            if chained:
                return  # its slot went on to the chained step: nothing for the loop to do
            self._next_due_stale = True  # a finished step may have queued a retry
        self.wake.set()

    @staticmethod
    def _sync_deadline(claim: ClaimedTask) -> float | None:
        if claim.kind != "step":
            return None
        try:
            step = registry.get(claim.workflow_name).step(claim.step)
        except (WorkflowNotFound, KeyError, AssertionError):
            return None
        if step.timeout is None or step.is_async:
            return None
        return time.monotonic() + step.timeout

    def _idle_timeout(self) -> float:
        # Housekeeping keeps its own pace however long the poll interval: leases held by
        # running steps must be extended before they expire.
        timeout = min(
            self.poll_interval,
            max(min(self._next_heartbeat, self._next_reap) - time.monotonic(), 0.0),
        )
        now = time.monotonic()
        if (
            self._next_due_stale
            or now - self._next_due_checked > NEXT_DUE_REFRESH
            or (self._next_due is not None and self._next_due <= timezone.now())
        ):
            self._next_due = claims.next_due_at(list(self.queues), using=self.adapter.using)
            self._next_due_checked = now
            self._next_due_stale = False
        if self._next_due is not None:
            timeout = min(timeout, max((self._next_due - timezone.now()).total_seconds(), 0.0))
        return timeout

    # -- housekeeping --------------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self._fail_timed_out_steps(now)
        if now >= self._next_heartbeat:
            with self._lock:
                held = [e.claim for e in self._in_flight.values() if not e.timed_out]
            claims.heartbeat(held, lease_seconds=self.lease_seconds, using=self.adapter.using)
            self._next_heartbeat = now + self.lease_seconds / 3
        if now >= self._next_cleanup:
            self._start_cleanup()
            config = durable_settings.RETENTION
            interval = float(
                (config if isinstance(config, dict) else {}).get("INTERVAL_SECONDS", 3600)
            )
            self._next_cleanup = now + interval * random.uniform(0.9, 1.1)
        if now >= self._next_reap:
            retaken = claims.reap_expired_leases(using=self.adapter.using)
            if retaken:
                logger.warning("retook %d task(s) whose worker stopped heartbeating", retaken)
            self._next_reap = now + max(self.lease_seconds / 2, 1.0)
        self._reconciler.maybe_run()

    def _start_cleanup(self) -> None:
        if self._cleanup_thread is not None and self._cleanup_thread.is_alive():
            return

        def run() -> None:
            try:
                deleted = retention.cleanup_from_settings(self.adapter.using)
                if any(deleted.values()):
                    logger.info("retention cleanup deleted %s", deleted)
            except Exception:
                logger.exception("retention cleanup failed; it runs again next interval")
            finally:
                close_old_connections()

        self._cleanup_thread = threading.Thread(target=run, name="durable-cleanup", daemon=True)
        self._cleanup_thread.start()

    def _fail_timed_out_steps(self, now: float) -> None:
        with self._lock:
            overdue = [
                e
                for e in self._in_flight.values()
                if e.deadline is not None and not e.timed_out and now > e.deadline
            ]
        for entry in overdue:
            entry.timed_out = True
            claim = entry.claim
            definition = registry.get(claim.workflow_name)
            timeout = definition.step(claim.step).timeout or 0
            error = StepTimeout(f"step {claim.step!r} ran past its timeout of {timeout:g}s")
            try:
                checkpoints.fail_step(
                    claim,
                    definition,
                    error=error_record(error, with_traceback=False),
                    retryable=True,
                    duration_ms=int(timeout * 1000),
                    using=self.adapter.using,
                )
                logger.warning(
                    "step %s of %s timed out after %gs; its thread is abandoned",
                    claim.step,
                    claim.workflow_id,
                    timeout,
                )
            except LeaseLost:
                pass
