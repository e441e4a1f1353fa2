"""Event-time windows in a user's zone.

Windows follow the local wall clock: a window of ``size_s`` starts at local
midnight plus a multiple of its hop, so a one-day window is the local day,
23 or 25 hours long when the clocks change. A window boundary that falls in
a spring-forward gap starts at the first instant after the gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.cron import resolve_local_time

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, order=True)
class Window:
    """A half-open interval ``[start, end)`` of UTC instants."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """Stable text form of ``start``, used in state and occurrence ids."""
        return self.start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def local_day(day: date, zone: ZoneInfo) -> Window:
    """Return the local calendar day ``day`` as a window of UTC instants."""
    start = resolve_local_time(datetime.combine(day, time()), zone)
    end = resolve_local_time(datetime.combine(day + timedelta(days=1), time()), zone)
    return Window(start, end)


def windows_containing(instant: datetime, zone: ZoneInfo, size_s: int, hop_s: int) -> list[Window]:
    """Return every window of ``size_s`` seconds, starting every ``hop_s`` seconds of
    local wall time, that contains ``instant``; one window when tumbling.

    ``size_s`` divides a day and ``hop_s`` divides ``size_s``.
    """
    local = instant.astimezone(zone)
    midnight = datetime.combine(local.date(), time())
    wall_s = local.hour * 3600 + local.minute * 60 + local.second
    latest_index = wall_s // hop_s
    found = []
    for back in range(size_s // hop_s):
        start_wall = midnight + timedelta(seconds=(latest_index - back) * hop_s)
        window = Window(
            resolve_local_time(start_wall, zone),
            resolve_local_time(start_wall + timedelta(seconds=size_s), zone),
        )
        if window.contains(instant):
            found.append(window)
    return sorted(found)
