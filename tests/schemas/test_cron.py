"""Cron parsing and DST-aware fire times, against known fault cases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter

from schemas.cron import load_zone, next_fire, parse_cron, resolve_local_time
from schemas.exceptions import InvalidScheduleError


def fires(expression: str, zone: str, start: str, count: int) -> list[str]:
    cron, tz = parse_cron(expression), load_zone(zone)
    instant = datetime.fromisoformat(start.replace("Z", "+00:00"))
    out = []
    for _ in range(count):
        found = next_fire(cron, tz, instant)
        assert found is not None
        out.append(found.strftime("%Y-%m-%dT%H:%M:%SZ"))
        instant = found
    return out


@pytest.mark.parametrize("start", ["2025-03-08T17:00:00Z", "2025-03-09T06:59:30Z", "2025-03-09T06:59:59Z"])
def test_spring_forward_fixed_time_fires_after_gap(start: str) -> None:
    assert fires("30 2 * * *", "America/New_York", start, 3) == [
        "2025-03-09T07:00:00Z",
        "2025-03-10T06:30:00Z",
        "2025-03-11T06:30:00Z",
    ]


def test_spring_forward_fires_once_on_gap_day() -> None:
    runs = fires("30 2 * * *", "America/New_York", "2025-03-08T05:00:00Z", 4)
    local_dates = [
        datetime.fromisoformat(run.replace("Z", "+00:00")).astimezone(load_zone("America/New_York")).date()
        for run in runs
    ]
    assert local_dates.count(datetime(2025, 3, 9).date()) == 1


def test_spring_forward_two_times_in_gap_fire_once() -> None:
    # Both 02:00 and 02:30 are skipped; they collapse into one run at 03:00.
    assert fires("0,30 2 * * *", "America/New_York", "2025-03-09T05:00:00Z", 3) == [
        "2025-03-09T07:00:00Z",
        "2025-03-10T06:00:00Z",
        "2025-03-10T06:30:00Z",
    ]


def test_fall_back_fixed_time_fires_first_pass_only() -> None:
    assert fires("30 1 * * *", "America/New_York", "2026-10-31T16:00:00Z", 3) == [
        "2026-11-01T05:30:00Z",
        "2026-11-02T06:30:00Z",
        "2026-11-03T06:30:00Z",
    ]


def test_fall_back_from_inside_second_pass_skips_day() -> None:
    # At 01:10 EST (second pass) the 01:30 run of that day has already fired.
    assert fires("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", 1) == ["2026-11-02T06:30:00Z"]


def test_fall_back_step_job_follows_elapsed_time() -> None:
    assert fires("*/30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", 7) == [
        "2026-11-01T04:30:00Z",
        "2026-11-01T05:00:00Z",
        "2026-11-01T05:30:00Z",
        "2026-11-01T06:00:00Z",
        "2026-11-01T06:30:00Z",
        "2026-11-01T07:00:00Z",
        "2026-11-01T07:30:00Z",
    ]


def test_fall_back_hourly_from_first_pass_reaches_second() -> None:
    # From 01:40 EDT, the next "minute 20" is 01:20 EST, one real hour later.
    assert fires("20 * * * *", "America/New_York", "2026-11-01T05:40:00Z", 2) == [
        "2026-11-01T06:20:00Z",
        "2026-11-01T07:20:00Z",
    ]


def test_spring_forward_step_job_follows_elapsed_time() -> None:
    assert fires("*/30 * * * *", "America/New_York", "2025-03-09T06:00:00Z", 4) == [
        "2025-03-09T06:30:00Z",
        "2025-03-09T07:00:00Z",
        "2025-03-09T07:30:00Z",
        "2025-03-09T08:00:00Z",
    ]


def test_daily_alias_across_spring_forward() -> None:
    assert fires("@daily", "America/New_York", "2025-03-08T17:00:00Z", 3) == [
        "2025-03-09T05:00:00Z",
        "2025-03-10T04:00:00Z",
        "2025-03-11T04:00:00Z",
    ]


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island moves by 30 minutes; 02:15 is skipped on 2025-10-05.
    assert fires("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T12:00:00Z", 2) == [
        "2025-10-04T15:30:00Z",
        "2025-10-05T15:15:00Z",
    ]


def test_europe_fall_back_fixed_time() -> None:
    assert fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3) == [
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00Z",
        "2026-10-27T01:30:00Z",
    ]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("* * * *", "has 4 fields; expected 5"),
        ("* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 32 * *", "day of month field: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("*/0 * * * *", "step 0"),
        ("*/90 * * * *", "step 90"),
        ("0 0 30 2 *", "never fires"),
        ("", "empty"),
        ("@reboot", "@reboot"),
        ("0 0 * * 8", "day of week field: 8 is out of range 0-7"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("@sometimes", "unknown cron alias"),
        ("0 9 * * funday", "not a number or a known name"),
        ("0 0 * * * *", "has 6 fields"),
    ],
)
def test_invalid_expression_rejected(expression: str, fragment: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        parse_cron(expression)
    assert fragment in str(caught.value)


def test_unknown_zone_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="unknown time zone 'America/Nowhere'"):
        load_zone("America/Nowhere")


@pytest.mark.parametrize("name", ["../etc/passwd", "", "/UTC"])
def test_zone_path_rejected(name: str) -> None:
    with pytest.raises(InvalidScheduleError):
        load_zone(name)


@pytest.mark.parametrize("expression", ["0 9 * * 7", "0 9 * * 0", "0 9 * * SUN"])
def test_sunday_spellings_fire_on_sunday(expression: str) -> None:
    run = fires(expression, "UTC", "2026-12-01T00:00:00Z", 1)[0]
    assert datetime.fromisoformat(run.replace("Z", "+00:00")).strftime("%A") == "Sunday"


@pytest.mark.parametrize("expression", ["0 9 * * MON-FRI", "0 9 * * mon-fri", "0 9 * * 1-5"])
def test_weekday_ranges_accepted(expression: str) -> None:
    runs = fires(expression, "UTC", "2026-12-04T10:00:00Z", 5)  # a Friday, after 09:00
    days = [datetime.fromisoformat(run.replace("Z", "+00:00")).strftime("%a") for run in runs]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_day_of_month_or_day_of_week() -> None:
    # The 13th of each month OR every Friday (POSIX).
    runs = fires("0 0 13 * 5", "UTC", "2026-12-01T00:00:00Z", 4)
    assert runs == ["2026-12-04T00:00:00Z", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z", "2026-12-18T00:00:00Z"]


def test_star_step_day_of_month_ands_with_weekday() -> None:
    # A day-of-month field starting with '*' makes both fields required.
    runs = fires("0 0 */2 * 5", "UTC", "2026-12-01T00:00:00Z", 2)
    assert runs == ["2026-12-11T00:00:00Z", "2026-12-25T00:00:00Z"]


def test_leap_day_schedule_is_accepted() -> None:
    assert fires("0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z", 1) == ["2028-02-29T12:00:00Z"]


def test_matches_croniter_in_utc() -> None:
    """Without DST the fire times agree with croniter for ordinary expressions."""
    rng = random.Random(7)
    expressions = ["*/15 * * * *", "0 9 * * 1-5", "30 */3 * * *", "5 4 1,15 * *", "0 0 * 2 *", "0 6 * * 0"]
    for expression in expressions:
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 500_000))
        expected = croniter(expression, start).get_next(datetime)
        assert next_fire(parse_cron(expression), load_zone("UTC"), start) == expected, expression


def test_reminder_local_time_in_gap_moves_after_gap() -> None:
    zone = load_zone("America/New_York")
    assert resolve_local_time(datetime(2025, 3, 9, 2, 30), zone) == datetime(2025, 3, 9, 7, 0, tzinfo=UTC)
    assert resolve_local_time(datetime(2026, 11, 1, 1, 30), zone) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
