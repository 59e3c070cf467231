"""The execution page's waterfall: one bar per attempt on a time axis from the run's start.

Bars are placed in seconds from the start (`--s`, `--d`), and the axis's length (`--total`)
is one number set on the whole chart, so a live update that only moves the clock sends
that number and not every bar: the page's CSS turns seconds into percentages. A running
attempt has no `--d`: it reaches to the end of the axis (now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from durable.models import StepExecution, WorkflowExecution

# Tick spacings (seconds) the axis may use, and at most how many ticks it draws.
_SPACINGS = (
    [m * 10.0**e for e in range(-3, 3) for m in (1, 2, 5)]
    + [60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0]
    + [86400.0 * d for d in (1, 2, 7, 14, 30)]
)
_MAX_TICKS = 8


@dataclass(frozen=True)
class Bar:
    row: StepExecution
    start: float  # seconds from the run's start
    duration: float | None  # None while the attempt runs

    @property
    def offset(self) -> str:
        return "+" + duration_text(self.start)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Waterfall:
    begin: datetime | None
    total: float  # seconds the axis spans, to three significant digits
    bars: list[Bar]
    ticks: list[Tick]


def duration_text(seconds: float) -> str:
    """A short, exact enough duration: 0 s, 340 ms, 2.5 s, 1 min 5 s, 2 h 3 min, 3 d 4 h."""
    if seconds <= 0:
        return "0 s"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{round(seconds)} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ticks(total: float) -> list[Tick]:
    """Evenly spaced ticks from 0 with a round spacing, at most _MAX_TICKS of them; none in
    the last tenth of the axis, where its label would not fit."""
    spacing = next((s for s in _SPACINGS if total / s <= _MAX_TICKS), _SPACINGS[-1])
    count = int(total / spacing) + 1
    return [
        Tick(i * spacing, duration_text(i * spacing))
        for i in range(count)
        if i == 0 or i * spacing <= 0.9 * total
    ]


def waterfall(execution: WorkflowExecution, rows: list[StepExecution]) -> Waterfall:
    now = timezone.now()
    started = [(r, r.started_at) for r in rows if r.started_at is not None]
    if not started:
        return Waterfall(None, 0.0, [], [])
    begin = min([execution.started_at or execution.created_at, *(at for _, at in started)])
    # An attempt still open when its run finished (cancelled, say) ends with the run.
    finished = execution.completed_at if execution.is_finished else None
    open_end = finished or now
    end = max([open_end, *(r.completed_at or open_end for r, _ in started)])
    total = max((end - begin).total_seconds(), 0.001)
    bars = []
    for row, at in started:
        start = (at - begin).total_seconds()
        stop = row.completed_at or finished
        duration = None
        if stop is not None:
            duration = max((stop - at).total_seconds(), 0.0)
        bars.append(Bar(row, round(start, 3), None if duration is None else round(duration, 3)))
    return Waterfall(begin, _coarse(total), bars, ticks(total))


def _coarse(total: float) -> float:
    """`total` to three significant digits: the axis of a long run then changes (and a live
    page is sent its new length) every few seconds, not at every poll."""
    return float(f"{total:.3g}")
