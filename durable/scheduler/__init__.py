"""Cron schedules: declare them on workflow classes or manage them by hand, and fire each
due tick exactly once however many schedulers (workers) run.

    from durable import scheduler
    scheduler.schedule("nightly-export", ExportData, "0 2 * * *", timezone="Europe/London")
    scheduler.unschedule("nightly-export")
"""

from __future__ import annotations

from durable.scheduler.runner import (
    Fired,
    SchedulerThread,
    backfill,
    run_forever,
    start_scheduler_thread,
    tick,
)
from durable.scheduler.schedules import (
    SyncResult,
    schedule,
    schedule_all_crons,
    schedule_problems,
    stored_schedule_problems,
    unschedule,
)

__all__ = [
    "Fired",
    "SchedulerThread",
    "SyncResult",
    "backfill",
    "run_forever",
    "schedule",
    "schedule_all_crons",
    "schedule_problems",
    "start_scheduler_thread",
    "stored_schedule_problems",
    "tick",
    "unschedule",
]
