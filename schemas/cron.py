"""Five-field cron expressions evaluated in an IANA time zone.

Parsing is strict. It rejects a value outside its field's range, a step of 0
or larger than the field, a range that runs backwards and an expression that
can never fire, with a message that names the field and the value.

Fire times follow the daylight-saving policy of Vixie cron and cronie:

* A fixed wall time that a spring-forward gap skips fires once, at the first
  instant after the gap.
* A fixed wall time that a fall-back repeats fires on the first pass only.
* A job whose hour field is ``*`` or has a step follows elapsed time, so it
  fires in both passes of a repeated hour.

Day-of-month and day-of-week combine as in Vixie cron: when either field
starts with ``*`` both must match, otherwise either one is enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.exceptions import InvalidScheduleError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1
    )
}
WEEKDAY_NAMES = {name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

#: How far ahead a fire time is searched. Eight years covers every
#: combination that fires at all, including 29 February on a given weekday.
SEARCH_HORIZON_DAYS = 8 * 366

#: Largest change of UTC offset at one transition that the fold search allows
#: for; real zones shift by at most two hours.
MAX_TRANSITION = timedelta(hours=3)

_ITEM = re.compile(r"^(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES),
    _Field("day of week", 0, 7, WEEKDAY_NAMES),
)

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression; build it with :func:`parse_cron`."""

    source: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    #: 0 is Sunday; 7 is folded into 0 when parsing.
    days_of_week: frozenset[int]
    day_of_month_star: bool
    day_of_week_star: bool
    #: True when the hour field is ``*`` or has a step: such a job follows
    #: elapsed time across daylight-saving changes.
    follows_elapsed_time: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days_of_month
        dow = (day.weekday() + 1) % 7 in self.days_of_week
        if self.day_of_month_star or self.day_of_week_star:
            return dom and dow
        return dom or dow

    def next_wall_time(self, after: datetime) -> datetime | None:
        """Return the first naive wall time strictly after ``after`` that matches.

        Returns ``None`` when nothing matches within ``SEARCH_HORIZON_DAYS``.
        """
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        last_day = day + timedelta(days=SEARCH_HORIZON_DAYS)
        first_day = True
        while day <= last_day:
            if day.month not in self.months:
                # Skip the rest of a month that cannot match.
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                first_day = False
                continue
            if self.matches_day(day):
                for hour in self.hours:
                    if first_day and hour < start.hour:
                        continue
                    for minute in self.minutes:
                        if first_day and hour == start.hour and minute < start.minute:
                            continue
                        return datetime(day.year, day.month, day.day, hour, minute)
            day += timedelta(days=1)
            first_day = False
        return None


def parse_cron(expression: str) -> CronExpression:
    """Parse a five-field expression or an ``@daily``-style alias.

    Raises ``InvalidScheduleError`` naming the field and value that are wrong.
    """
    text = " ".join(expression.strip().lower().split())
    if not text:
        raise InvalidScheduleError("cron expression is empty; expected five fields such as '0 9 * * *'")
    if text.startswith("@"):
        if text == "@reboot":
            raise InvalidScheduleError("'@reboot' is not supported: it names no time of day")
        if text not in ALIASES:
            raise InvalidScheduleError(f"unknown cron alias {expression!r}; supported: {', '.join(sorted(ALIASES))}")
        text = ALIASES[text]

    parts = text.split(" ")
    if len(parts) != 5:
        raise InvalidScheduleError(
            f"cron expression {expression!r} has {len(parts)} field{'s' if len(parts) != 1 else ''}; expected 5 "
            "(minute hour day-of-month month day-of-week)"
        )

    values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    days_of_week = frozenset(0 if day == 7 else day for day in values[4])
    cron = CronExpression(
        source=expression.strip(),
        minutes=tuple(sorted(values[0])),
        hours=tuple(sorted(values[1])),
        days_of_month=frozenset(values[2]),
        months=frozenset(values[3]),
        days_of_week=days_of_week,
        day_of_month_star=parts[2].startswith("*"),
        day_of_week_star=parts[4].startswith("*"),
        follows_elapsed_time=parts[1] == "*" or "/" in parts[1],
    )
    _reject_never_firing(cron)
    return cron


def _parse_field(text: str, spec: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if match is None:
            raise InvalidScheduleError(f"{spec.name} field: {item!r} is not a value, range or step")
        base, step_text = match.group("base"), match.group("step")
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, last = base.split("-")
            low, high = _parse_value(first, spec), _parse_value(last, spec)
            if low > high:
                raise InvalidScheduleError(f"{spec.name} field: range {item!r} runs backwards")
        else:
            low = _parse_value(base, spec)
            # "5/15" means "from 5 to the end of the field, every 15".
            high = spec.high if step_text is not None else low
        step = 1
        if step_text is not None:
            step = int(step_text)
            width = spec.high - spec.low + 1
            if step == 0 or step > width:
                raise InvalidScheduleError(f"{spec.name} field: step {step} in {item!r} must be between 1 and {width}")
        values.update(range(low, high + 1, step))
    return values


def _parse_value(text: str, spec: _Field) -> int:
    if spec.names is not None and text in spec.names:
        return spec.names[text]
    if not text.isdigit():
        raise InvalidScheduleError(f"{spec.name} field: {text!r} is not a number or a known name")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise InvalidScheduleError(f"{spec.name} field: {value} is out of range {spec.low}-{spec.high}")
    return value


def _reject_never_firing(cron: CronExpression) -> None:
    # A leap year start, so that 29 February is inside the horizon.
    if cron.next_wall_time(datetime(2024, 1, 1)) is None:
        raise InvalidScheduleError(f"cron expression {cron.source!r} never fires: no month in it has that day")


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise ``InvalidScheduleError``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'") from exc


def wall_to_instants(wall: datetime, zone: ZoneInfo, *, both_passes: bool) -> list[datetime]:
    """Map a naive wall time in ``zone`` to the UTC instants it stands for.

    A wall time in a spring-forward gap maps to the first instant after the
    gap. A repeated wall time maps to its first pass, or to both passes when
    ``both_passes`` is true. Every other wall time maps to one instant.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        # The wall time does not exist: fold=1 used the offset before the
        # gap and fold=0 the offset after it, so the gap lies between them.
        return [_transition_between(min(first, second), max(first, second), zone)]
    return [first, second] if both_passes else [first]


def _transition_between(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant in (before, after] whose UTC offset is the later one."""
    target = after.astimezone(zone).utcoffset()
    low, high = before, after
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def next_fire(cron: CronExpression, zone: ZoneInfo, after: datetime) -> datetime | None:
    """Return the first fire instant (UTC) strictly after the aware instant ``after``.

    Returns ``None`` when the expression does not fire within the search
    horizon, which :func:`parse_cron` already rejects.
    """
    after = after.astimezone(UTC)
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None)
    # Inside or just before a repeated hour, an earlier wall time can still
    # have its second pass ahead, so start the scan that much earlier.
    later_offset = (after + MAX_TRANSITION).astimezone(zone).utcoffset()
    current_offset = local.utcoffset()
    if later_offset is not None and current_offset is not None and later_offset < current_offset:
        wall -= current_offset - later_offset

    best: datetime | None = None
    candidate = cron.next_wall_time(wall - timedelta(minutes=1))
    while candidate is not None:
        instants = wall_to_instants(candidate, zone, both_passes=cron.follows_elapsed_time)
        if best is not None and instants[0] > best:
            break
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
        candidate = cron.next_wall_time(candidate)
    return best


def resolve_local_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the UTC instant of a one-shot wall time, with the fixed-time DST policy."""
    return wall_to_instants(wall, zone, both_passes=False)[0]
