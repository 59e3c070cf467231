"""Firing due ticks: `tick()` once, `run_forever()` in a loop, `SchedulerThread` in a worker.

Exactly once is enforced by the database, not by timing. Each tick is fired in one
transaction that locks the schedule row (`FOR UPDATE SKIP LOCKED`: another scheduler
skips it), starts the workflow with the idempotency key `cron:<name>:<fire time>`, inserts
the `ScheduledRun` row (unique per schedule and fire time) and moves `next_run_at` on. A
scheduler that loses a race finds the row locked or no longer due, and fires nothing.

A tick counts as missed when no scheduler handled it within `GRACE_SECONDS` of its time
(every worker was down). Missed ticks follow the schedule's `catch_up` policy: `skip`
drops them, `run_once` starts one run for all of them (recorded at the first missed tick,
`caught_up=True`). Either way the schedule resumes at the first tick that is not missed.

A tick whose earlier runs are still unfinished follows the schedule's `overlap` policy:
`allow` starts its run anyway, `skip` starts nothing (the tick is consumed and logged),
`cancel_previous` cancels those runs, then starts its own, in the tick's transaction.
`backfill(name, start, end)` fires the ticks of a past period that have no run, once each
(the same key and run row make a tick fire once, whoever fires it), without the overlap
policy: backfilled ticks are history, not a schedule running late.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connections, transaction
from django.db.models import Min, Q
from django.utils import timezone as django_timezone

from durable.api import cancel, start
from durable.dsl.cron import ALLOW, CANCEL_PREVIOUS, RUN_ONCE, SKIP, Cron
from durable.exceptions import InvalidTransition, WorkflowNotFound
from durable.models import (
    FINISHED_STATUSES,
    ExecutionStatus,
    ScheduledRun,
    ScheduledWorkflow,
    WorkflowExecution,
)
from durable.scheduler.schedules import option, schedule_all_crons, using

logger = logging.getLogger("durable.scheduler")

UNFINISHED_STATUSES = sorted(set(ExecutionStatus.values) - FINISHED_STATUSES)


@dataclass(frozen=True)
class Fired:
    schedule: str
    fire_time: datetime
    workflow_id: str
    caught_up: bool


def tick(now: datetime | None = None) -> list[Fired]:
    """Fire every due tick of every enabled schedule; return what this call fired.

    A schedule that cannot fire here (its workflow is not registered in this process, its
    queue is not configured) is logged and left due, for a scheduler that can."""
    now = now or django_timezone.now()
    due = (
        ScheduledWorkflow.objects.using(using())
        .filter(Q(next_run_at__lte=now) | Q(next_run_at__isnull=True), enabled=True)
        .order_by("next_run_at", "pk")
        .values_list("pk", "name")
    )
    fired: list[Fired] = []
    for pk, name in list(due):
        try:
            while True:
                advanced, run = _advance(pk, now)
                if run is not None:
                    fired.append(run)
                if not advanced:
                    break
        except WorkflowNotFound as exc:
            logger.warning("schedule %r cannot fire here: %s", name, exc)
        except ValueError as exc:  # an invalid stored schedule or unconfigured queue (E010)
            logger.error("schedule %r cannot fire: %s", name, exc)
        except IntegrityError:
            logger.info("schedule %r: the tick was fired by another scheduler", name)
        except Exception:
            logger.exception("schedule %r could not fire", name)
    return fired


def _advance(pk: int, now: datetime) -> tuple[bool, Fired | None]:
    """Handle the schedule's next due tick in one transaction. Returns (whether the
    schedule moved on, the run fired if any)."""
    db = using()
    with transaction.atomic(using=db):
        row = (
            ScheduledWorkflow.objects.using(db)
            .select_for_update(skip_locked=True)
            .filter(pk=pk, enabled=True)
            .first()
        )
        if row is None:
            return False, None  # another scheduler holds it, or it was disabled or deleted
        cron = Cron(row.cron_expression, row.timezone)
        due = row.next_run_at
        if due is None:  # enabled without a next tick (e.g. edited in the admin)
            row.next_run_at = cron.next_after(now)
            row.save(using=db, update_fields=["next_run_at", "updated_at"])
            return False, None
        if due > now:
            return False, None
        horizon = now - timedelta(seconds=float(option("GRACE_SECONDS")))
        run = None
        if due >= horizon:
            run = _fire(row, due, caught_up=False)
            row.next_run_at = cron.next_after(due)
        else:
            if row.catch_up == RUN_ONCE:
                run = _fire(row, due, caught_up=True)
            else:
                logger.info("schedule %r: skipping ticks missed since %s", row.name, due)
            # Resume at the first tick that is not missed; if it is already due, it fires next.
            row.next_run_at = cron.next_after(horizon - timedelta(microseconds=1))
        row.save(using=db, update_fields=["next_run_at", "last_run_at", "updated_at"])
    return True, run


def _fire(
    row: ScheduledWorkflow, fire_time: datetime, *, caught_up: bool, overlap: bool = True
) -> Fired | None:
    db = using()
    if ScheduledRun.objects.using(db).filter(schedule=row, fire_time=fire_time).exists():
        return None  # fired before the schedule was moved back (a concurrent sync)
    if overlap and row.overlap != ALLOW:
        unfinished = _unfinished_runs(row)
        if unfinished and row.overlap == SKIP:
            logger.info(
                "schedule %r skipped the tick of %s: run %s is still unfinished",
                row.name,
                fire_time.isoformat(),
                ", ".join(unfinished),
            )
            return None
        if row.overlap == CANCEL_PREVIOUS:
            for workflow_id in unfinished:
                _cancel_previous(row, workflow_id, fire_time)
    key = f"cron:{row.name}:{fire_time.astimezone(UTC).isoformat()}"
    workflow_id = start(row.workflow_name, row.input, queue=row.queue, idempotency_key=key)
    ScheduledRun.objects.using(db).create(
        schedule=row,
        fire_time=fire_time,
        workflow_id=workflow_id,
        caught_up=caught_up,
        fired_by=f"{socket.gethostname()}:{os.getpid()}",
    )
    row.last_run_at = fire_time
    logger.info(
        "schedule %r fired %s%s -> %s",
        row.name,
        fire_time.isoformat(),
        " (catching up missed ticks)" if caught_up else "",
        workflow_id,
    )
    return Fired(row.name, fire_time, workflow_id, caught_up)


def _unfinished_runs(row: ScheduledWorkflow) -> list[str]:
    """The workflow ids of the schedule's runs that have not finished, oldest first."""
    db = using()
    # The workflow's unfinished executions first (an index scan, usually a few rows), then
    # which of them this schedule started: never a scan of the schedule's whole history.
    unfinished = list(
        WorkflowExecution.objects.using(db)
        .filter(workflow_name=row.workflow_name, status__in=UNFINISHED_STATUSES)
        .order_by("created_at", "id")
        .values_list("workflow_id", flat=True)
    )
    if not unfinished:
        return []
    ours = set(
        ScheduledRun.objects.using(db)
        .filter(schedule=row, workflow_id__in=unfinished)
        .values_list("workflow_id", flat=True)
    )
    return [workflow_id for workflow_id in unfinished if workflow_id in ours]


def _cancel_previous(row: ScheduledWorkflow, workflow_id: str, fire_time: datetime) -> None:
    # InvalidTransition: it finished between the look-up and the cancel.
    with suppress(InvalidTransition):
        cancel(
            workflow_id,
            reason=f"cancel_previous: schedule {row.name!r} fired {fire_time.isoformat()}",
        )
    logger.info("schedule %r cancelled its unfinished run %s", row.name, workflow_id)


# The most ticks one backfill fires: a typo in a range should not start a million runs.
MAX_BACKFILL_TICKS = 10_000


def backfill(name: str, start: datetime, end: datetime) -> list[Fired]:
    """Fire every tick of schedule `name` from `start` to `end` (both included, aware
    datetimes, `end` not in the future) that has no run yet, oldest first; return those it
    fired. A tick that has a run (fired on time, by a catch-up or an earlier backfill) is
    left alone, so running it twice fires nothing more. The overlap policy does not apply.
    LookupError for an unknown schedule; ValueError for a bad range or more than
    MAX_BACKFILL_TICKS ticks, before anything fires."""
    begin, finish = _backfill_range(start, end)
    db = using()
    row = ScheduledWorkflow.objects.using(db).filter(name=name).first()
    if row is None:
        raise LookupError(f"no schedule named {name!r}")
    ticks: list[datetime] = []
    for fire_time in Cron(row.cron_expression, row.timezone).fire_times(
        begin - timedelta(microseconds=1)
    ):
        if fire_time > finish:
            break
        ticks.append(fire_time)
        if len(ticks) > MAX_BACKFILL_TICKS:
            raise ValueError(
                f"{begin.isoformat()} to {finish.isoformat()} holds more than "
                f"{MAX_BACKFILL_TICKS} ticks of schedule {name!r}; backfill a shorter period"
            )
    fired: list[Fired] = []
    for fire_time in ticks:
        # One transaction per tick, holding the schedule row as a scheduler's tick does.
        with transaction.atomic(using=db):
            locked = ScheduledWorkflow.objects.using(db).select_for_update().get(pk=row.pk)
            run = _fire(locked, fire_time, caught_up=True, overlap=False)
        if run is not None:
            fired.append(run)
    return fired


def _backfill_range(start: object, end: object) -> tuple[datetime, datetime]:
    start, end = _aware("start", start), _aware("end", end)
    if start > end:
        raise ValueError(f"start ({start.isoformat()}) is after end ({end.isoformat()})")
    if end > django_timezone.now():
        raise ValueError(
            f"end ({end.isoformat()}) is in the future; backfill fires past ticks only"
        )
    return start, end


def _aware(label: str, bound: object) -> datetime:
    if not isinstance(bound, datetime):
        raise TypeError(f"{label} must be a datetime, got {bound!r}")
    if django_timezone.is_naive(bound):
        raise ValueError(f"{label} must be timezone-aware (e.g. tzinfo=UTC)")
    return bound


def run_forever(stop_event: threading.Event, interval: float | None = None) -> None:
    """Tick until `stop_event` is set: right when the next tick falls due, and at least
    every `interval` seconds (to see schedules other processes changed)."""
    every = float(interval if interval is not None else option("INTERVAL"))
    db = using()
    logger.info("scheduler started (looking for changes every %ss)", every)
    try:
        while not stop_event.is_set():
            now = django_timezone.now()
            try:
                tick(now)
                delay = _delay(now, every)
            except Exception:  # e.g. the database went away: reconnect on the next pass
                logger.exception("scheduler pass failed; retrying in %ss", every)
                connections[db].close()
                delay = every
            stop_event.wait(delay)
    finally:
        connections[db].close()
        logger.info("scheduler stopped")


def _delay(tick_time: datetime, interval: float) -> float:
    """Seconds until the earliest tick the pass at `tick_time` did not handle yet."""
    earliest: datetime | None = (
        ScheduledWorkflow.objects.using(using())
        .filter(enabled=True, next_run_at__gt=tick_time)
        .aggregate(first=Min("next_run_at"))["first"]
    )
    if earliest is None:
        return interval
    return max(0.0, min(interval, (earliest - django_timezone.now()).total_seconds()))


class SchedulerThread(threading.Thread):
    """The scheduler inside a worker: registers class schedules, then runs the loop."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__(name="durable-scheduler", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            schedule_all_crons()
        except Exception:
            logger.exception("could not register the cron schedules of workflow classes")
        run_forever(self.stopping, self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


def start_scheduler_thread(interval: float | None = None) -> SchedulerThread | None:
    """Start a `SchedulerThread`, unless `DURABLE["SCHEDULER"]["ENABLED"]` is false."""
    if not option("ENABLED"):
        logger.info("the scheduler is disabled by DURABLE['SCHEDULER']['ENABLED']")
        return None
    thread = SchedulerThread(interval)
    thread.start()
    return thread
