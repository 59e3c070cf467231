"""The worker: claims ready steps per queue and runs them on one event loop.

Each claimed task becomes a coroutine of the worker's loop. An `async def` step is awaited
right there, so a thousand of them in flight cost a thousand coroutines, not threads; a
sync step runs on a bounded thread pool while its coroutine waits. A queue's
`concurrency` bounds both kinds together.

The worker's own database work goes through a fixed set of connections, whatever the
concurrency (durable.engine.lanes): the claims lane (claims, housekeeping, idle waits),
the side lane (the rare reads before a step and progress reports), the committer
(checkpoints, batched: durable.engine.committer), the lease keeper (durable.engine.leases),
plus the queue adapter's listener and the live-log flusher. Steps never hold one of
Durable's.

A busy worker claims less: it claims nothing while checkpoints queue up faster than they
commit. Leases are renewed by the keeper's own thread, which step load cannot starve.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
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

from django.db import close_old_connections, connections
from django.utils import timezone

from durable.conf import durable_settings
from durable.dsl import registry
from durable.engine import executor
from durable.engine.committer import Committer
from durable.engine.executor import Committed, Run
from durable.engine.lanes import Lane
from durable.engine.leases import LeaseKeeper
from durable.engine.reconciler import Reconciler
from durable.engine.telemetry import Probe, Telemetry
from durable.exceptions import StepTimeout, WorkflowNotFound
from durable.flow.cancellation import Cancellation
from durable.queue.base import QueueAdapter
from durable.store import claims, deploys, patching, retention, workers
from durable.store.claims import Chain
from durable.store.outcomes import Failed, Outcome, Result
from durable.store.records import ClaimedTask, error_record

logger = logging.getLogger("durable.worker")


# Seconds an idle worker trusts its cached next due time without a wake-up.
NEXT_DUE_REFRESH = 30.0
# How many steps a coroutine runs in a row by claiming each one's next step in its
# checkpoint before going back to the queue, where other executions (and higher
# priorities) wait.
MAX_CHAIN = 16
# Committer threads (a connection each). One: a second did not raise throughput (its
# batches get smaller), and costs a connection.
COMMIT_THREADS = 1
# Seconds between housekeeping runs of the claim loop (timed-out steps, the reaper's and
# the cleanup's schedules): the loop itself wakes for every claim that finishes without a
# chained one and for every NOTIFY, far more often than those need.
HOUSEKEEPING_INTERVAL = 0.2
# Sync steps run on at most this many threads unless DURABLE["SYNC_THREADS"] says.
DEFAULT_SYNC_THREADS = 64
# Seconds a sync step past its timeout is given to stop (it sees `ctx.cancelled` at once)
# before its timeout is recorded without it and its thread abandoned. Until then its retry
# is not scheduled anywhere.
TIMEOUT_GRACE = 3.0
# Seconds a draining worker waits, once it has asked the sync steps it gives up to stop,
# for them to return before it exits without their threads.
DRAIN_STOP_GRACE = 2.0


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
    deadline: float | None = None  # monotonic; a sync step once its thread runs it
    # Set when the attempt is asked to stop; it is the step's `ctx.cancelled`.
    cancellation: Cancellation | None = None
    timed_out: bool = False  # its timeout was recorded without it: the thread is abandoned
    thread_running: bool = False
    body: asyncio.Future[Outcome] | None = None  # a sync step's thread, as the loop sees it


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
        sync_threads: int | None = None,
        telemetry: Telemetry | None = None,
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
        configured = sync_threads or durable_settings.SYNC_THREADS
        self.sync_threads = int(configured or min(sum(self.queues.values()), DEFAULT_SYNC_THREADS))
        self.stats = WorkerStats()
        self.telemetry = telemetry or Telemetry()
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._lock = threading.Lock()
        # Claims held per queue, from their claim to their checkpoint (a chained claim takes
        # over its predecessor's place); the claim loop takes no more than the queue's
        # concurrency leaves. `_slots` bounds the bodies running, which an abandoned thread's
        # body keeps until it ends.
        self._running: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._in_flight: dict[int, InFlight] = {}  # by task id
        # Claims given up while their bodies still run, by task id: sync attempts whose
        # timeout was recorded without them, and claims whose task was claimed here again
        # (their lease lapsed). The task's next attempt waits for their bodies; their slots
        # stay taken until the bodies end.
        self._abandoned: dict[int, list[InFlight]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_reap = 0.0
        # The next delayed task's due time, looked up again only when something may have
        # changed it (work claimed or finished, a wake-up) or it passed: an idle worker
        # polls with the claim query alone.
        self._next_due: datetime | None = None
        self._next_due_checked = -float("inf")
        self._next_due_stale = True
        # Retention runs off the main loop (it may delete many batches) with some jitter,
        # so a fleet of workers started together does not clean up in lockstep.
        self._next_cleanup = time.monotonic() + random.uniform(30, 90)
        self._cleanup_thread: threading.Thread | None = None
        self._batch_size = max(int(durable_settings.CHECKPOINT_BATCH), 1)
        # Broker adapters only: publishes ready tasks again that the broker lost.
        self._reconciler = Reconciler(adapter, list(self.queues))
        # Step threads still running when `run` returned (released or timed out): the
        # process must exit without joining them.
        self.abandoned_steps = 0

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        """Serve the queues until `stop`; then drain and return."""
        logger.info(
            "worker %s serving %s",
            self.worker_id,
            ", ".join(f"{q} (x{n})" for q, n in self.queues.items()),
        )
        asyncio.run(self._serve())

    def stop(self) -> None:
        """Stop claiming; `run` then waits for in-flight steps and returns."""
        self.stopping.set()
        self.wake.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A queue's concurrency bounds the bodies running, async and sync alike.
        self._slots = {queue: asyncio.Semaphore(n) for queue, n in self.queues.items()}
        self._next_housekeeping = 0.0
        self._claims = Lane("claims")
        self._side = Lane("side")
        self._committer = Committer(self.adapter, self._batch_size, threads=COMMIT_THREADS)
        self._pool = ThreadPoolExecutor(self.sync_threads, thread_name_prefix="durable-step")
        self._keeper = LeaseKeeper(
            self._held,
            worker_id=self.worker_id,
            lease_seconds=self.lease_seconds,
            using=self.adapter.using,
            lost=self._lost,
        )
        try:
            await self._claims.run(self._register)
            self._keeper.start()
            await self._claims.run(self._revive_parked)
            await self._claim_loop()
            await self._drain()
            await self._claims.run(self._unregister)
        finally:
            self._keeper.stop(timeout=5)
            self._pool.shutdown(wait=not self.abandoned_steps, cancel_futures=True)
            self._claims.close(wait=False)
            self._side.close(wait=False)
            close_old_connections()
        logger.info("worker %s stopped", self.worker_id)

    async def _claim_loop(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                claimed = await self._claim_round()
                if time.monotonic() >= self._next_housekeeping:
                    # Not on every round: the loop wakes with every finished claim.
                    await self._claims.run(self._housekeeping)
                    self._next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
                idle_timeout = None if claimed else await self._claims.run(self._idle_timeout)
                backoff = 0.5
            except Exception as exc:
                # The database went away: keep the in-flight steps, try again.
                logger.warning("worker loop error (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._check_recycle()
            if claimed:
                self._next_due_stale = True
            if idle_timeout is not None and not self.stopping.is_set():
                await self._claims.run(
                    self.adapter.wait_for_work, list(self.queues), idle_timeout, self.wake
                )
                if self.wake.is_set():
                    self._next_due_stale = True
            elif self._busy():
                # Checkpoints are queueing: let them commit before claiming more.
                await self._claims.run(self.wake.wait, self.poll_interval)

    def _register(self) -> None:
        # Its row tells the others this worker is alive while it renews its leases.
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                workers.register(self.worker_id, self.queues, using=self.adapter.using)
                self._record_step_code()
                return
            except Exception as exc:
                logger.warning("could not register the worker (%s); retrying", exc)
                close_old_connections()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _record_step_code(self) -> None:
        # What durable_deploy_check compares the next deploy's steps with.
        try:
            patching.record_step_code(registry.all_definitions(), using=self.adapter.using)
        except Exception as exc:
            logger.warning("could not record the workflows' step code: %s", exc)

    def _unregister(self) -> None:
        try:
            workers.stopped(self.worker_id, using=self.adapter.using)
        except Exception as exc:
            logger.warning("could not record the worker's stop: %s", exc)

    def _revive_parked(self) -> None:
        """After a deploy, executions parked for a missing step may have it back."""
        try:
            # Revived tasks are announced (and published to a broker) by the store.
            revived = deploys.revive_parked(using=self.adapter.using)
            if revived:
                logger.info("revived parked executions on queue(s) %s", ", ".join(sorted(revived)))
        except Exception as exc:
            logger.warning("could not revive executions needing attention: %s", exc)

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.shutdown_timeout
        while self._tasks and time.monotonic() < deadline:
            try:
                await self._claims.run(self._fail_timed_out_steps, time.monotonic())
            except Exception as exc:
                logger.warning("housekeeping failed while draining (%s)", exc)
            running = set(self._tasks)  # the last may have ended meanwhile
            if running:
                await asyncio.wait(running, timeout=0.05)
        with self._lock:
            left = list(self._in_flight.values())
            abandoned = sum(len(entries) for entries in self._abandoned.values())
        for entry in left:
            claim = entry.claim
            if entry.cancellation is not None:
                entry.cancellation.cancel("the worker is shutting down")
            logger.warning(
                "releasing %s of %s unfinished at shutdown", claim.step, claim.workflow_id
            )
            try:
                await self._claims.run(self.adapter.nack, claim)
            except Exception:
                logger.exception("could not release %s; its lease will expire", claim.step)
        bodies = [e.body for e in left if e.body is not None and not e.body.done()]
        if bodies:
            # Asked to stop (ctx.cancelled): a sync step that checks returns within moments.
            await asyncio.wait(bodies, timeout=DRAIN_STOP_GRACE)
        # Async steps are cancelled; sync steps cannot be, and their threads are abandoned.
        self.abandoned_steps = abandoned + sum(1 for entry in left if entry.thread_running)
        cancelled = set(self._tasks)
        for task in cancelled:
            task.cancel()
        if cancelled:
            await asyncio.wait(cancelled, timeout=1.0)
        # Abandoned steps that finish later are checkpointed alone (their leases were
        # given back, so those checkpoints are rejected).
        await asyncio.to_thread(self._committer.close, self.shutdown_timeout)

    # -- claiming ------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._committer.backlog > 2 * self._batch_size

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

    async def _claim_round(self) -> bool:
        self.wake.clear()
        if self._busy():
            return False
        claimed_any = False
        for queue, concurrency in self.queues.items():
            with self._lock:
                free = concurrency - self._running[queue]
            if self.max_tasks is not None:
                free = min(free, self.max_tasks - self.stats.claimed)
            if free <= 0:
                continue
            claim = functools.partial(
                self.adapter.claim,
                queue,
                free,
                worker_id=self.worker_id,
                lease_seconds=self.lease_seconds,
            )
            for claimed in await self._claims.run(claim):
                claimed_any = True
                self._track(claimed)
                task = asyncio.create_task(self._run(claimed))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return claimed_any

    def _track(self, claim: ClaimedTask) -> None:
        with self._lock:
            self._running[claim.queue] = self._running.get(claim.queue, 0) + 1
            earlier = self._in_flight.get(claim.task_id)
            if earlier is not None:
                # Claimed again while an earlier claim of it runs here: that one's lease
                # lapsed (its checkpoint will be refused), so it is asked to stop.
                self._abandon(earlier, "its lease lapsed and its task was claimed again")
            self._in_flight[claim.task_id] = InFlight(claim)
            self.stats.claimed += 1

    def in_flight(self) -> dict[str, int]:
        """Steps running now, per queue (read by the metrics server's thread)."""
        with self._lock:
            return dict(self._running)

    def _abandon(self, entry: InFlight, reason: str) -> None:
        """Under the lock: give up `entry`'s claim while its body may still run."""
        del self._in_flight[entry.claim.task_id]
        self._abandoned.setdefault(entry.claim.task_id, []).append(entry)
        if entry.cancellation is not None:
            entry.cancellation.cancel(reason)

    def _held(self) -> list[ClaimedTask]:
        """The claims whose leases the keeper renews."""
        with self._lock:
            return [e.claim for e in self._in_flight.values()]

    def _lost(self, lost: list[ClaimedTask]) -> None:
        """On the keeper's thread: these claims' leases are gone (their execution was
        cancelled, or another worker took them over): their steps are asked to stop."""
        with self._lock:
            entries = [self._in_flight.get(claim.task_id) for claim in lost]
        for claim, entry in zip(lost, entries, strict=True):
            if entry is not None and entry.claim is claim and entry.cancellation is not None:
                logger.warning(
                    "step %s of %s lost its lease (its execution was cancelled or another "
                    "worker took it over); asking it to stop",
                    claim.step,
                    claim.workflow_id,
                )
                entry.cancellation.cancel("its lease was lost (cancelled or taken over)")

    async def _run(self, claim: ClaimedTask) -> None:
        """Run `claim` and the claims its checkpoints return: the next step of its execution
        (at most MAX_CHAIN in a row), or a due task of the queue taken in a batch
        checkpoint for a coroutine whose execution went no further."""
        links = 0
        next_claim: ClaimedTask | None = claim
        while next_claim is not None:
            claim, chained = next_claim, None
            try:
                chained = await self._execute(claim, self._chain(links))
            except Exception:
                # Not the step (its errors are outcomes) but the worker's own work around
                # it, the database gone, say: hand it back, or its lease lapses.
                logger.exception("running %s of %s failed", claim.step, claim.workflow_id)
                with contextlib.suppress(Exception):
                    await self._claims.run(self.adapter.nack, claim)
            finally:
                # The next claim is counted before this one is let go, so the slot it
                # holds is never seen free.
                if chained is not None:
                    self._track(chained)
                self._finished(claim, chained=chained is not None)
            # A claim taken from the queue is as fair as the claim loop's: only steps of
            # one execution in a row count towards the limit.
            if chained is not None:
                links = links + 1 if chained.execution_pk == claim.execution_pk else 0
            next_claim = chained

    async def _execute(self, claim: ClaimedTask, chain: Chain | None) -> ClaimedTask | None:
        adapter = self.adapter
        if not adapter.capabilities.chains_claims:
            chain = None
        if executor.needs_database(claim):
            prepared = await self._side.run(
                functools.partial(executor.prepare, claim, adapter, db=self._side, chain=chain)
            )
        else:
            prepared = executor.prepare(claim, adapter, db=self._side, chain=chain)
        if prepared is None:
            return None
        if not isinstance(prepared, Run):
            return await self._settle(prepared)
        await self._after_abandoned_attempt(claim)
        entry = self._watch(prepared)
        probe: Probe | None = None
        try:
            # An abandoned thread's body holds its slot until the thread ends.
            async with self._slots[claim.queue]:
                # Begun once the body may start: its claim-to-start delay counts the wait
                # for a slot.
                probe = self.telemetry.begin(prepared)
                with probe if probe is not None else contextlib.nullcontext():
                    outcome = await self._invoke(prepared, entry)
            # The claim keeps its place in the queue's count until its checkpoint: the next
            # step the checkpoint hands on takes it over (a slot freed at the body's end let
            # the claim loop take a task besides, out of priority order).
            return await self._settle(outcome, probe)
        except BaseException:
            if probe is not None:
                probe.abandon()
            raise

    async def _invoke(self, run: Run, entry: InFlight | None) -> Outcome:
        if run.is_async:
            return await executor.invoke_async(run)
        # The thread runs in a copy of this coroutine's context: the step's span is current.
        call = functools.partial(contextvars.copy_context().run, self._invoke_sync, run)
        body = self._loop.run_in_executor(self._pool, call)
        if entry is not None:
            entry.body = body  # a later attempt of the task waits for it (timeouts)
        return await body

    async def _settle(self, outcome: Outcome, probe: Probe | None = None) -> ClaimedTask | None:
        """Checkpoint `outcome`; the claim it chained, if any."""
        result = await self._checkpoint(outcome)
        followed: ClaimedTask | object | None
        while True:
            followed = executor.settled(outcome, result)
            if followed is not executor.RECOVER:
                break
            # Rare: a connection error or a value the database refused.
            recovery = await self._side.run(executor.recover, outcome, result, self.adapter)
            if recovery is None:
                followed = None
                break
            outcome, result = recovery, await self._checkpoint(recovery)
        if probe is not None:
            probe.end(outcome, result)
        return followed  # type: ignore[return-value]

    async def _checkpoint(self, outcome: Outcome) -> Result:
        if isinstance(outcome, Committed):
            return outcome.settled()
        return await asyncio.wrap_future(self._committer.submit(outcome))

    def _watch(self, run: Run) -> InFlight | None:
        """The claim's entry, now holding the attempt's cancellation."""
        with self._lock:
            entry = self._in_flight.get(run.claim.task_id)
            if entry is None or entry.claim is not run.claim:
                return None
            entry.cancellation = run.cancellation
            return entry

    async def _after_abandoned_attempt(self, claim: ClaimedTask) -> None:
        """Wait while an earlier attempt of the claim's task still runs on a thread of this
        worker (its timeout was recorded without it): two attempts of a step never run side
        by side here. The claim keeps its slot and its lease meanwhile."""
        with self._lock:
            earlier = [
                e for e in self._abandoned.get(claim.task_id, []) if e.body and not e.body.done()
            ]
        if not earlier:
            return
        logger.warning(
            "attempt %d of step %s of %s waits until attempt %d, past its timeout, stops",
            claim.attempt,
            claim.step,
            claim.workflow_id,
            earlier[0].claim.attempt,
        )
        await asyncio.wait([e.body for e in earlier if e.body is not None])

    def _invoke_sync(self, run: Run) -> Outcome:
        """On a pool thread: run a sync step under the worker's timeout watch."""
        with self._lock:
            entry = self._in_flight.get(run.claim.task_id)
            if entry is not None and entry.claim is run.claim:
                entry.thread_running = True
                if run.step.timeout is not None:
                    entry.deadline = time.monotonic() + run.step.timeout
            else:
                entry = None
        try:
            return executor.invoke(run)
        finally:
            if entry is not None:
                with self._lock:
                    entry.thread_running = False

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

    def _entry(self, claim: ClaimedTask) -> InFlight | None:
        """Under the lock: `claim`'s entry. The task's next attempt may be in flight
        already, under the same task id, when this one was abandoned."""
        entry = self._in_flight.get(claim.task_id)
        if entry is not None and entry.claim is claim:
            return entry
        for entry in self._abandoned.get(claim.task_id, []):
            if entry.claim is claim:
                return entry
        return None

    def _forget(self, entry: InFlight) -> None:
        """Under the lock: drop `entry`, wherever it is kept."""
        task_id = entry.claim.task_id
        if self._in_flight.get(task_id) is entry:
            del self._in_flight[task_id]
            return
        abandoned = [e for e in self._abandoned.get(task_id, []) if e is not entry]
        if abandoned:
            self._abandoned[task_id] = abandoned
        else:
            self._abandoned.pop(task_id, None)

    def _finished(self, claim: ClaimedTask, *, chained: bool = False) -> None:
        """Its checkpoint is done (or it was handed back): the lease keeper lets it go."""
        with self._lock:
            entry = self._entry(claim)
            if entry is not None:
                self._forget(entry)
                self._running[claim.queue] -= 1
            self.stats.finished += 1
            if chained:
                return  # the chained step is its own claim now: nothing for the loop to do
            self._next_due_stale = True  # a finished step may have queued a retry
        self.wake.set()

    def _idle_timeout(self) -> float:
        """On the claims lane: how long an idle worker may wait for a wake-up."""
        timeout = min(self.poll_interval, max(self._next_reap - time.monotonic(), 0.0))
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

    # -- housekeeping (on the claims lane) -----------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self._fail_timed_out_steps(now)
        if now >= self._next_cleanup:
            self._start_cleanup()
            config = durable_settings.RETENTION
            interval = float(
                (config if isinstance(config, dict) else {}).get("INTERVAL_SECONDS", 3600)
            )
            self._next_cleanup = now + interval * random.uniform(0.9, 1.1)
        if now >= self._next_reap:
            retaken = claims.reap_expired_leases(using=self.adapter.using)
            self.telemetry.leases_retaken(retaken)
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
                connections.close_all()

        self._cleanup_thread = threading.Thread(target=run, name="durable-cleanup", daemon=True)
        self._cleanup_thread.start()

    def _fail_timed_out_steps(self, now: float) -> None:
        """Sync steps cannot be interrupted, only asked to stop. Past its deadline a step
        sees `ctx.cancelled`; one that returns within TIMEOUT_GRACE is recorded as timed
        out by its own run. One still running then is failed (and retried) here, and its
        thread abandoned: its slot stays taken and its task's next attempt waits on this
        worker until it ends."""
        with self._lock:
            overdue = [
                e
                for e in self._in_flight.values()
                if e.deadline is not None
                and e.thread_running
                and not e.timed_out
                and now > e.deadline + TIMEOUT_GRACE
            ]
            for entry in overdue:
                entry.timed_out = True
                # Its lease is renewed no more; the retry, claimed here, waits for it.
                self._abandon(entry, "its timeout passed")
        for entry in overdue:
            claim = entry.claim
            try:
                definition = registry.get(claim.workflow_name)
                timeout = definition.step(claim.step).timeout or 0
            except (WorkflowNotFound, KeyError, AssertionError):
                continue
            error = StepTimeout(f"step {claim.step!r} ran past its timeout of {timeout:g}s")
            outcome = Failed(
                claim,
                definition,
                duration_ms=int(timeout * 1000),
                error=error_record(error, with_traceback=False),
                retryable=True,
            )
            logger.warning(
                "step %s of %s timed out after %gs and did not stop within %gs; its thread "
                "is abandoned",
                claim.step,
                claim.workflow_id,
                timeout,
                TIMEOUT_GRACE,
            )
            # Checkpointed with the others; a lost lease there means another worker has it.
            committed = self._committer.submit(outcome)
            committed.add_done_callback(functools.partial(self.telemetry.timed_out, outcome))
