"""Cron expressions and time zones: validation and fire times, with explicit DST rules.

Pure calculation (no ORM). croniter only parses the expression and walks *wall-clock*
times on naive datetimes, where it does plain calendar arithmetic. Turning a wall-clock
time into an instant is done here, with one rule that covers every transition:

    a wall-clock time `c` fires at the earliest instant whose local time is >= `c`.

So a time that exists once fires then; a time repeated when clocks fall back fires once, at
its first occurrence; a time skipped when clocks spring forward fires at the first instant
after the gap (the moment the clocks jump), and several skipped times collapse into that
one run. The rule is monotonic, so fire times come out in order and never twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from durable.serialization import NotJSONError, normalize

SKIP = "skip"
RUN_ONCE = "run_once"
CATCH_UP_POLICIES = (SKIP, RUN_ONCE)
# What a tick does while runs of earlier ticks are unfinished.
ALLOW = "allow"
CANCEL_PREVIOUS = "cancel_previous"
OVERLAP_POLICIES = (ALLOW, SKIP, CANCEL_PREVIOUS)

ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
MAX_LENGTH = 200  # ScheduledWorkflow.cron_expression
# Any date works: it only proves the expression matches some date at all (Feb 30 never does).
_PROBE = datetime(2000, 1, 1)


def parse_expression(expression: object) -> str:
    """The expression with its whitespace normalized; ValueError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"cron expression must be a non-empty string, got {expression!r}")
    normalized = " ".join(expression.split())
    if len(normalized) > MAX_LENGTH:
        raise ValueError(f"cron expression must be at most {MAX_LENGTH} characters")
    fields = normalized.split(" ")
    if len(fields) == 1 and normalized.startswith("@"):
        if normalized.lower() not in ALIASES:
            raise ValueError(
                f"invalid cron expression {expression!r}: unknown alias; use one of "
                f"{', '.join(sorted(ALIASES))}"
            )
    elif len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron expression {expression!r}: expected 5 fields (minute hour "
            "day-of-month month day-of-week) or 6 (the same plus second), "
            f"got {len(fields)}"
        )
    try:
        croniter(normalized, _PROBE).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"invalid cron expression {expression!r}: it matches no date") from None
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    return normalized


def get_zone(name: object) -> ZoneInfo:
    """The IANA time zone `name`; ValueError when there is no such zone."""
    # "localtime" names whatever zone each host is set to: schedules must mean one instant.
    if not isinstance(name, str) or not name or name == "localtime":
        raise ValueError(f"time zone must be an IANA name such as 'Europe/London', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'America/New_York'"
        ) from None


def check_catch_up(policy: object) -> str:
    if policy not in CATCH_UP_POLICIES:
        raise ValueError(
            f"catch_up must be one of {', '.join(map(repr, CATCH_UP_POLICIES))}, got {policy!r}"
        )
    return str(policy)


def check_overlap(policy: object) -> str:
    if policy not in OVERLAP_POLICIES:
        raise ValueError(
            f"overlap must be one of {', '.join(map(repr, OVERLAP_POLICIES))}, got {policy!r}"
        )
    return str(policy)


class Cron:
    """A validated expression in a zone. Fire times are aware datetimes in UTC."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = parse_expression(expression)
        self.timezone = timezone
        self.zone = get_zone(timezone)

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, {self.timezone!r})"

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after `moment` (an aware datetime)."""
        return next(self.fire_times(moment))

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Every fire time strictly after `after`, in order, each instant once."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"expected an aware datetime, got {after!r}")
        # A wall-clock time c fires after `after` only if c > local(after): see the module doc.
        walk = croniter(self.expression, self._wall(after))
        last = after
        while True:
            instant = self.resolve(walk.get_next(datetime))
            if instant > last:
                yield instant
                last = instant

    def resolve(self, wall: datetime) -> datetime:
        """The earliest instant (UTC) whose local time in the zone is >= the naive `wall`."""
        candidates = [wall.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
        existing = [c for c in candidates if self._wall(c) == wall]
        if existing:
            return min(existing)  # the first occurrence of a repeated time
        # `wall` falls in a gap: find the transition between the two readings by bisection.
        # Transitions happen on whole seconds.
        low, high = (int(c.timestamp()) for c in sorted(candidates))
        while high - low > 1:
            middle = (low + high) // 2
            if self._wall(datetime.fromtimestamp(middle, UTC)) >= wall:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)


@dataclass(frozen=True)
class ClassSchedule:
    """What a workflow class's `cron*` attributes ask for. `None` fields use the defaults
    (the workflow's queue, `DURABLE["SCHEDULER"]["TIMEZONE"]`)."""

    expression: str
    timezone: str | None
    queue: str | None
    input: dict[str, Any]
    catch_up: str
    overlap: str = ALLOW


def class_schedule(cls: type[Any]) -> ClassSchedule | None:
    """The schedule declared on a workflow class, or None. Call `class_problems` first."""
    expression = getattr(cls, "cron", None)
    if expression is None:
        return None
    return ClassSchedule(
        expression=parse_expression(expression),
        timezone=getattr(cls, "cron_timezone", None),
        queue=getattr(cls, "cron_queue", None),
        input=normalize(dict(getattr(cls, "cron_input", None) or {}), "cron_input"),
        catch_up=getattr(cls, "cron_catch_up", SKIP),
        overlap=getattr(cls, "cron_overlap", ALLOW),
    )


def class_problems(cls: type[Any]) -> list[str]:
    """Everything wrong with a class's `cron`, `cron_timezone`, `cron_queue`, `cron_input`,
    `cron_catch_up` and `cron_overlap` attributes."""
    expression = getattr(cls, "cron", None)
    if expression is None:
        unused = ["cron_timezone", "cron_queue", "cron_input"]
        if getattr(cls, "cron_catch_up", SKIP) != SKIP:
            unused.append("cron_catch_up")
        if getattr(cls, "cron_overlap", ALLOW) != ALLOW:
            unused.append("cron_overlap")
        return [f"{name} is set but cron is not" for name in unused if getattr(cls, name, None)]
    problems: list[str] = []
    zone = getattr(cls, "cron_timezone", None)
    queue = getattr(cls, "cron_queue", None)
    data = getattr(cls, "cron_input", None)
    try:
        parse_expression(expression)
    except ValueError as exc:
        problems.append(str(exc))
    if zone is not None:
        try:
            get_zone(zone)
        except ValueError as exc:
            problems.append(f"cron_timezone: {exc}")
    if queue is not None and (not isinstance(queue, str) or not queue):
        problems.append(f"cron_queue must be a non-empty string, got {queue!r}")
    if data is not None and not isinstance(data, dict):
        problems.append(f"cron_input must be a dict (a JSON object), got {type(data).__name__}")
    elif data:
        try:
            normalize(data, "cron_input")
        except NotJSONError as exc:
            problems.append(str(exc))
    try:
        check_catch_up(getattr(cls, "cron_catch_up", SKIP))
    except ValueError as exc:
        problems.append(f"cron_catch_up: {exc}")
    try:
        check_overlap(getattr(cls, "cron_overlap", ALLOW))
    except ValueError as exc:
        problems.append(f"cron_overlap: {exc}")
    return problems
