"""Fire times across DST transitions: hand-checked examples, and a brute-force cross-check.

The rule under test (durable/dsl/cron.py): a wall-clock time fires at the earliest instant
whose local time is >= it. A repeated time (fall back) fires once, at its first occurrence;
a skipped time (spring forward) fires once, at the instant the clocks jump.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice, takewhile
from zoneinfo import ZoneInfo

import pytest

from durable.dsl.cron import Cron, get_zone, parse_expression


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, zone: str, after: datetime, count: int) -> list[datetime]:
    return list(islice(Cron(expression, zone).fire_times(after), count))


# The transitions the examples rely on (tzdata 2026): checked so a rule change fails loudly.
TRANSITIONS = [
    # zone, last instant of the old offset + 1s, old offset, new offset (hours)
    ("America/New_York", utc(2026, 3, 8, 7), -5, -4),
    ("America/New_York", utc(2026, 11, 1, 6), -4, -5),
    ("Europe/London", utc(2026, 3, 29, 1), 0, 1),
    ("Europe/London", utc(2026, 10, 25, 1), 1, 0),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15), 11, 10.5),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30), 10.5, 11),
]


@pytest.mark.parametrize(("zone", "at", "before", "after"), TRANSITIONS)
def test_the_transitions_the_examples_assume(zone, at, before, after):
    tz = ZoneInfo(zone)
    offset = (at - timedelta(seconds=1)).astimezone(tz).utcoffset()
    assert offset == timedelta(hours=before)
    assert at.astimezone(tz).utcoffset() == timedelta(hours=after)


# --- America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST


def test_new_york_daily_in_the_spring_gap_fires_once_when_the_clocks_jump():
    # 02:30 does not exist on March 8: it fires at 03:00 EDT (07:00 UTC), the next valid instant.
    assert fires("30 2 * * *", "America/New_York", utc(2026, 3, 7), 3) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # 03:00 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_new_york_every_30_minutes_collapses_the_skipped_hour_into_one_run():
    assert fires("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 4, 59), 7) == [
        utc(2026, 3, 8, 5, 0),  # 00:00 EST
        utc(2026, 3, 8, 5, 30),
        utc(2026, 3, 8, 6, 0),
        utc(2026, 3, 8, 6, 30),  # 01:30 EST
        utc(2026, 3, 8, 7, 0),  # 02:00, 02:30 (skipped) and 03:00 EDT: one run
        utc(2026, 3, 8, 7, 30),  # 03:30 EDT
        utc(2026, 3, 8, 8, 0),
    ]


def test_new_york_hourly_across_spring_forward():
    assert fires("0 * * * *", "America/New_York", utc(2026, 3, 8, 4, 59), 4) == [
        utc(2026, 3, 8, 5),  # 00:00 EST
        utc(2026, 3, 8, 6),  # 01:00 EST
        utc(2026, 3, 8, 7),  # 02:00 (skipped) and 03:00 EDT: one run
        utc(2026, 3, 8, 8),  # 04:00 EDT
    ]


def test_new_york_daily_at_a_repeated_time_fires_once_at_its_first_occurrence():
    assert fires("30 1 * * *", "America/New_York", utc(2026, 10, 31), 3) == [
        utc(2026, 10, 31, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; 01:30 EST (06:30 UTC) does not fire
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
    ]


def test_new_york_every_30_minutes_across_fall_back_fires_each_wall_time_once():
    assert fires("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 3, 59), 7) == [
        utc(2026, 11, 1, 4, 0),  # 00:00 EDT
        utc(2026, 11, 1, 4, 30),
        utc(2026, 11, 1, 5, 0),  # 01:00 EDT
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; the repeated 01:00/01:30 EST do not fire
        utc(2026, 11, 1, 7, 0),  # 02:00 EST
        utc(2026, 11, 1, 7, 30),
        utc(2026, 11, 1, 8, 0),
    ]


def test_new_york_hourly_across_fall_back():
    assert fires("0 * * * *", "America/New_York", utc(2026, 11, 1, 3, 59), 4) == [
        utc(2026, 11, 1, 4),  # 00:00 EDT
        utc(2026, 11, 1, 5),  # 01:00 EDT (01:00 EST, 06:00 UTC, is the same wall time)
        utc(2026, 11, 1, 7),  # 02:00 EST
        utc(2026, 11, 1, 8),
    ]


def test_asking_from_inside_the_repeated_hour_does_not_fire_a_wall_time_again():
    # 06:30 UTC is 01:30 EST, the second pass: 01:31..01:59 already fired (in EDT).
    assert Cron("* * * * *", "America/New_York").next_after(utc(2026, 11, 1, 6, 30)) == utc(
        2026, 11, 1, 7, 0
    )
    assert Cron("30 1 * * *", "America/New_York").next_after(utc(2026, 11, 1, 6)) == utc(
        2026, 11, 2, 6, 30
    )


# --- Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT


def test_london_daily_in_the_spring_gap():
    assert fires("30 1 * * *", "Europe/London", utc(2026, 3, 28), 3) == [
        utc(2026, 3, 28, 1, 30),  # 01:30 GMT
        utc(2026, 3, 29, 1, 0),  # 01:30 does not exist: 02:00 BST
        utc(2026, 3, 30, 0, 30),  # 01:30 BST
    ]


def test_london_every_30_minutes_across_spring_forward():
    assert fires("*/30 * * * *", "Europe/London", utc(2026, 3, 28, 23, 59), 5) == [
        utc(2026, 3, 29, 0, 0),  # 00:00 GMT
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 0),  # 01:00, 01:30 (skipped) and 02:00 BST: one run
        utc(2026, 3, 29, 1, 30),  # 02:30 BST
        utc(2026, 3, 29, 2, 0),
    ]


def test_london_daily_at_a_repeated_time():
    assert fires("30 1 * * *", "Europe/London", utc(2026, 10, 24), 3) == [
        utc(2026, 10, 24, 0, 30),  # 01:30 BST
        utc(2026, 10, 25, 0, 30),  # 01:30 BST, not again at 01:30 GMT
        utc(2026, 10, 26, 1, 30),  # 01:30 GMT
    ]


def test_london_hourly_across_fall_back():
    assert fires("0 * * * *", "Europe/London", utc(2026, 10, 24, 22, 59), 4) == [
        utc(2026, 10, 24, 23),  # 00:00 BST
        utc(2026, 10, 25, 0),  # 01:00 BST
        utc(2026, 10, 25, 2),  # 02:00 GMT (01:00 GMT repeats a wall time)
        utc(2026, 10, 25, 3),
    ]


# --- Australia/Lord_Howe: 30-minute shifts. 2026-04-05 02:00 LHDT (+11) -> 01:30 LHST
# (+10:30); 2026-10-04 02:00 LHST -> 02:30 LHDT.


def test_lord_howe_every_30_minutes_across_the_half_hour_fall_back():
    assert fires("*/30 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 12, 59), 6) == [
        utc(2026, 4, 4, 13, 0),  # 00:00 LHDT
        utc(2026, 4, 4, 13, 30),
        utc(2026, 4, 4, 14, 0),  # 01:00 LHDT
        utc(2026, 4, 4, 14, 30),  # 01:30 LHDT; 01:30 LHST (15:00 UTC) does not fire
        utc(2026, 4, 4, 15, 30),  # 02:00 LHST
        utc(2026, 4, 4, 16, 0),
    ]


def test_lord_howe_daily_at_a_repeated_time():
    assert fires("45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 3), 3) == [
        utc(2026, 4, 3, 14, 45),  # 01:45 LHDT on April 4
        utc(2026, 4, 4, 14, 45),  # 01:45 LHDT on April 5, not again at 01:45 LHST
        utc(2026, 4, 5, 15, 15),  # 01:45 LHST on April 6
    ]


def test_lord_howe_every_30_minutes_across_the_half_hour_spring_forward():
    assert fires("*/30 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 13, 29), 7) == [
        utc(2026, 10, 3, 13, 30),  # 00:00 LHST
        utc(2026, 10, 3, 14, 0),
        utc(2026, 10, 3, 14, 30),
        utc(2026, 10, 3, 15, 0),  # 01:30 LHST
        utc(2026, 10, 3, 15, 30),  # 02:00 (skipped) and 02:30 LHDT: one run
        utc(2026, 10, 3, 16, 0),  # 03:00 LHDT
        utc(2026, 10, 3, 16, 30),
    ]


def test_lord_howe_daily_in_the_half_hour_gap_and_hourly():
    assert fires("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 2), 3) == [
        utc(2026, 10, 2, 15, 45),  # 02:15 LHST on October 3
        utc(2026, 10, 3, 15, 30),  # 02:15 does not exist on October 4: 02:30 LHDT
        utc(2026, 10, 4, 15, 15),  # 02:15 LHDT on October 5
    ]
    assert fires("0 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 14), 3) == [
        utc(2026, 10, 3, 14, 30),  # 01:00 LHST
        utc(2026, 10, 3, 15, 30),  # 02:00 does not exist: 02:30 LHDT
        utc(2026, 10, 3, 16, 0),  # 03:00 LHDT
    ]


# --- Brute force: an independent reading of the rule, minute by minute.


def brute_force(
    matches: Callable[[datetime], bool], zone: str, start: datetime, end: datetime
) -> list[datetime]:
    """Fire times in (start, end]: every matching wall-clock minute, placed at the first
    UTC minute whose local reading is >= it (transitions here fall on whole minutes)."""
    tz = ZoneInfo(zone)
    instants = [start - timedelta(hours=3) + timedelta(minutes=i) for i in range(60 * 60)]
    readings = [s.astimezone(tz).replace(tzinfo=None) for s in instants]
    highest = list(accumulate(readings, max))  # sorted, so "first reading >= c" is a bisect
    wall = readings[0]
    out: set[datetime] = set()
    while wall <= readings[-1] - timedelta(hours=6):
        if matches(wall):
            instant = instants[bisect_left(highest, wall)]
            if start < instant <= end:
                out.add(instant)
        wall += timedelta(minutes=1)
    return sorted(out)


MATCHERS: dict[str, Callable[[datetime], bool]] = {
    "* * * * *": lambda c: True,
    "*/30 * * * *": lambda c: c.minute % 30 == 0,
    "*/15 * * * *": lambda c: c.minute % 15 == 0,
    "0 * * * *": lambda c: c.minute == 0,
    "30 2 * * *": lambda c: (c.hour, c.minute) == (2, 30),
    "15 2 * * *": lambda c: (c.hour, c.minute) == (2, 15),
    "45 1 * * *": lambda c: (c.hour, c.minute) == (1, 45),
    "0 1,2,3 * * *": lambda c: c.minute == 0 and c.hour in (1, 2, 3),
}


@pytest.mark.parametrize("expression", sorted(MATCHERS))
@pytest.mark.parametrize(("zone", "at"), [(zone, at) for zone, at, _, _ in TRANSITIONS])
def test_fire_times_match_a_brute_force_reading_of_the_rule(expression, zone, at):
    start, end = at - timedelta(hours=24), at + timedelta(hours=24)
    got = list(takewhile(lambda t: t <= end, Cron(expression, zone).fire_times(start)))
    assert got == brute_force(MATCHERS[expression], zone, start, end)
    assert len(got) == len(set(got))


# --- Parsing and arguments


def test_six_fields_add_seconds_and_aliases_work():
    assert fires("* * * * * */2", "UTC", utc(2026, 1, 1, 0, 0, 0), 3) == [
        utc(2026, 1, 1, 0, 0, 2),
        utc(2026, 1, 1, 0, 0, 4),
        utc(2026, 1, 1, 0, 0, 6),
    ]
    assert fires("@daily", "Europe/London", utc(2026, 7, 1, 12), 1) == [utc(2026, 7, 1, 23)]
    assert parse_expression("  0   9 * *  1-5 ") == "0 9 * * 1-5"


def test_next_after_is_strictly_after_and_needs_an_aware_datetime():
    cron = Cron("0 9 * * *", "UTC")
    assert cron.next_after(utc(2026, 1, 1, 9)) == utc(2026, 1, 2, 9)
    assert cron.next_after(utc(2026, 1, 1, 8, 59, 59)) == utc(2026, 1, 1, 9)
    with pytest.raises(ValueError, match="aware"):
        cron.next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "expected 5 fields"),
        ("0 9 * * * * 2030", "expected 5 fields"),
        ("0 0 30 2 *", "matches no date"),
        ("*/0 * * * *", "step"),
        ("H * * * *", "invalid cron expression"),
        ("@reboot", "unknown alias"),
        ("", "non-empty string"),
        (None, "non-empty string"),
        ("every day", "expected 5 fields"),
        ("0 " + "1," * 120 + "1 * * *", "at most 200 characters"),
    ],
)
def test_invalid_expressions_are_rejected_clearly(expression, message):
    with pytest.raises(ValueError, match=message):
        parse_expression(expression)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", None, "EST5EDT ", "America", "localtime"]
)
def test_unknown_zones_are_rejected(zone):
    with pytest.raises(ValueError, match="time zone"):
        get_zone(zone)
