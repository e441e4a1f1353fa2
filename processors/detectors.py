"""Pattern detectors over one user's activity, as pure functions of state.

``observe`` takes the user's detector state (a JSON-ready dict kept in a
faust table), the user's pattern triggers and one event, and returns the new
state and the detections. It never mutates its input, because faust writes
only an assignment of a whole value to the changelog.

Event time rules: the state keeps a watermark, the latest event time seen.
An event older than the watermark minus the allowed lateness is late: it is
reported and not merged. Windows are half-open ``[start, end)``. Windows that
can no longer change are dropped from the state when the user's next event
arrives.

NOTE: pruning runs on a user's own events, so the state of a user who goes
silent keeps its last windows (a few hundred bytes) until they return.

Every detection names its window. The occurrence id built from it (detector,
user, trigger and window) is the same after a restart or a rebalance, so a
detection fires once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from processors.windows import Window, local_date, local_day, windows_containing
from schemas.events import EventEnvelope
from schemas.patterns import CustomRule, EnergyDip, HighProductivity, LowMood, PatternMatch
from schemas.triggers import TriggerDefinition

#: Mood readings kept per trigger.
#: NOTE: a run of low readings longer than this loses its first reading, so
#: its start moves and the run fires once more.
MOOD_HISTORY = 50


@dataclass(frozen=True)
class Detection:
    """One pattern found: which trigger, over which window, and why."""

    trigger_id: str
    detector: str
    window: Window
    #: The readings or counts behind the detection, for the history.
    evidence: dict[str, Any]
    #: Values a message template can name.
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def window_id(self) -> str:
        return f"{self.window.key}/{self.window.end.strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass(frozen=True)
class Observation:
    state: dict[str, Any]
    detections: list[Detection]
    #: True when the event was older than the allowed lateness and ignored.
    late: bool


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def observe(
    state: dict[str, Any], triggers: list[TriggerDefinition], event: EventEnvelope, allowed_lateness_s: float
) -> Observation:
    """Fold one event into the user's state and return any detections.

    1. Reject the event as late when it is older than the watermark minus
       ``allowed_lateness_s``.
    2. Advance the watermark and the last-seen time.
    3. Let each enabled pattern trigger update its own state and detect.
    """
    new = copy.deepcopy(state)
    occurred = event.occurred_at.astimezone(UTC)
    lateness = timedelta(seconds=allowed_lateness_s)

    # 1. Late?
    watermark = parse_iso(new["watermark"]) if new.get("watermark") else None
    if watermark is not None and occurred < watermark - lateness:
        return Observation(new, [], late=True)

    # 2. Time.
    if watermark is None or occurred > watermark:
        watermark = occurred
        new["watermark"] = iso(occurred)
    last_seen = parse_iso(new["last_seen"]) if new.get("last_seen") else None
    if last_seen is None or occurred > last_seen:
        new["last_seen"] = iso(occurred)
    horizon = watermark - lateness

    # 3. Detect.
    detections: list[Detection] = []
    trigger_states: dict[str, Any] = new.setdefault("triggers", {})
    live_ids = set()
    for definition in triggers:
        when = definition.when
        if not definition.enabled or not isinstance(when, PatternMatch):
            continue
        live_ids.add(definition.trigger_id)
        zone = ZoneInfo(when.timezone)
        own = trigger_states.setdefault(definition.trigger_id, {})
        detector = when.detector
        if isinstance(detector, LowMood):
            found = _low_mood(own, detector, event, zone, horizon)
        elif isinstance(detector, HighProductivity):
            found = _high_productivity(own, detector, event, zone, horizon)
        elif isinstance(detector, EnergyDip):
            found = _energy_dip(own, detector, event, zone, horizon)
        elif isinstance(detector, CustomRule):
            found = _custom(own, detector, event, zone, horizon)
        else:
            found = []
        detections.extend(
            Detection(definition.trigger_id, item.detector, item.window, item.evidence, item.fields) for item in found
        )
    for stale in set(trigger_states) - live_ids:
        del trigger_states[stale]
    return Observation(new, detections, late=False)


def _low_mood(
    own: dict[str, Any], detector: LowMood, event: EventEnvelope, zone: ZoneInfo, horizon: datetime
) -> list[Detection]:
    if event.type != "mood.logged":
        return []
    sentiment = float(event.data["sentiment"])
    occurred = event.occurred_at.astimezone(UTC)
    found: list[Detection] = []

    # Consecutive readings, in event time.
    readings: list[list[Any]] = own.setdefault("readings", [])
    readings.append([iso(occurred), sentiment])
    readings.sort(key=lambda item: item[0])
    del readings[:-MOOD_HISTORY]
    run: list[list[Any]] = []
    for reading in reversed(readings):
        if reading[1] >= detector.threshold:
            break
        run.insert(0, reading)
    if len(run) >= detector.readings:
        window = Window(parse_iso(run[0][0]), parse_iso(run[-1][0]) + timedelta(microseconds=1))
        fired: list[str] = own.setdefault("fired_runs", [])
        if run[0][0] not in fired:
            fired.append(run[0][0])
            del fired[:-MOOD_HISTORY]
            values = [value for _, value in run]
            found.append(
                Detection(
                    "",
                    "low_mood",
                    window,
                    {"rule": "readings", "readings": run, "threshold": detector.threshold},
                    {"readings_count": len(run), "average": round(sum(values) / len(values), 2)},
                )
            )

    # Daily averages on consecutive local days.
    days: dict[str, list[float]] = own.setdefault("days", {})
    today = local_date(occurred, zone)
    total = days.setdefault(today.isoformat(), [0.0, 0])
    total[0] += sentiment
    total[1] += 1
    fired_days: list[str] = own.setdefault("fired_days", [])
    for last in (today + timedelta(days=offset) for offset in range(detector.days)):
        span = [last - timedelta(days=back) for back in range(detector.days - 1, -1, -1)]
        averages = []
        for day in span:
            entry = days.get(day.isoformat())
            if entry is None or entry[1] == 0:
                break
            averages.append(entry[0] / entry[1])
        if len(averages) < detector.days or any(value >= detector.daily_threshold for value in averages):
            continue
        key = span[0].isoformat()
        if key in fired_days:
            continue
        fired_days.append(key)
        window = Window(local_day(span[0], zone).start, local_day(span[-1], zone).end)
        found.append(
            Detection(
                "",
                "low_mood",
                window,
                {
                    "rule": "daily_average",
                    "days": {day.isoformat(): round(avg, 3) for day, avg in zip(span, averages, strict=True)},
                    "threshold": detector.daily_threshold,
                },
                {"days": detector.days, "average": round(sum(averages) / len(averages), 2)},
            )
        )
    _prune_days(days, horizon, zone, keep_days=detector.days + 1)
    _prune_list(fired_days, (local_date(horizon, zone) - timedelta(days=detector.days + 1)).isoformat())
    return found


def _high_productivity(
    own: dict[str, Any], detector: HighProductivity, event: EventEnvelope, zone: ZoneInfo, horizon: datetime
) -> list[Detection]:
    if event.type != "task.completed":
        return []
    days: dict[str, int] = own.setdefault("days", {})
    today = local_date(event.occurred_at, zone)
    key = today.isoformat()
    days[key] = days.get(key, 0) + 1
    found = []
    fired: list[str] = own.setdefault("fired", [])
    if days[key] >= detector.tasks and key not in fired:
        fired.append(key)
        window = local_day(today, zone)
        found.append(
            Detection(
                "",
                "high_productivity",
                window,
                {"tasks_completed": days[key], "local_date": key, "threshold": detector.tasks},
                {"count": days[key], "local_date": key},
            )
        )
    _prune_days(days, horizon, zone, keep_days=1)
    _prune_list(fired, (local_date(horizon, zone) - timedelta(days=1)).isoformat())
    return found


def _energy_dip(
    own: dict[str, Any], detector: EnergyDip, event: EventEnvelope, zone: ZoneInfo, horizon: datetime
) -> list[Detection]:
    if event.type != "energy.logged":
        return []
    level = float(event.data["level"])
    occurred = event.occurred_at.astimezone(UTC)
    windows: dict[str, list[Any]] = own.setdefault("windows", {})
    closed: list[list[Any]] = own.setdefault("closed", [])
    fired: list[str] = own.setdefault("fired", [])

    (window,) = windows_containing(occurred, zone, detector.window_s, detector.window_s)
    entry = windows.setdefault(window.key, [iso(window.end), 0.0, 0])
    entry[1] += level
    entry[2] += 1

    # Windows that can no longer change feed the baseline.
    for key in sorted(windows):
        end, total, count = windows[key]
        if parse_iso(end) <= horizon:
            closed.append([key, total / count])
            del windows[key]
    closed.sort(key=lambda item: item[0])
    del closed[: -detector.baseline_windows]

    earlier = [average for key, average in closed if key < window.key]
    average = entry[1] / entry[2]
    if len(earlier) < detector.min_baseline_windows or entry[2] < detector.min_readings or window.key in fired:
        return []
    baseline = sum(earlier) / len(earlier)
    # Rounded so that a reading exactly on the line (0.6 against 0.8 less
    # 25 %) is not below it because of binary floating point.
    if round(average, 9) >= round(baseline * (1 - detector.fraction), 9):
        return []
    fired.append(window.key)
    del fired[: -detector.baseline_windows]
    return [
        Detection(
            "",
            "energy_dip",
            window,
            {
                "window_average": round(average, 3),
                "readings": entry[2],
                "baseline": round(baseline, 3),
                "baseline_windows": len(earlier),
                "fraction": detector.fraction,
            },
            {"average": round(average, 2), "baseline": round(baseline, 2)},
        )
    ]


def _custom(
    own: dict[str, Any], detector: CustomRule, event: EventEnvelope, zone: ZoneInfo, horizon: datetime
) -> list[Detection]:
    windows: dict[str, list[Any]] = own.setdefault("windows", {})
    found: list[Detection] = []
    if event.type == detector.event_type:
        value = _field_value(event.data, detector.field) if detector.field else 1.0
        if value is not None:
            occurred = event.occurred_at.astimezone(UTC)
            for window in windows_containing(occurred, zone, detector.window.size_s, detector.window.hop_s):
                entry = windows.setdefault(window.key, [iso(window.end), 0, 0.0, False])
                entry[1] += 1
                entry[2] += value
                if detector.op in ("gt", "gte", "eq"):
                    found.extend(_custom_check(own, detector, window, entry))

    # Windows past the lateness horizon are closed: "below" rules fire now,
    # and every closed window leaves the state.
    for key in sorted(windows):
        entry = windows[key]
        end = parse_iso(entry[0])
        if end <= horizon:
            if detector.op in ("lt", "lte"):
                found.extend(_custom_check(own, detector, Window(parse_iso(key), end), entry))
            del windows[key]
    return found


def _custom_check(own: dict[str, Any], detector: CustomRule, window: Window, entry: list[Any]) -> list[Detection]:
    _, count, total, already = entry
    if already:
        return []
    if detector.aggregate == "count":
        value = float(count)
    elif detector.aggregate == "sum":
        value = total
    else:
        value = total / count
    if not _compare(value, detector.op, detector.threshold):
        return []
    last_fired = own.get("last_fired")
    if last_fired and window.start < parse_iso(last_fired) + timedelta(seconds=detector.cooldown_s):
        return []
    entry[3] = True
    own["last_fired"] = iso(window.start)
    evidence = {
        "aggregate": detector.aggregate,
        "value": round(value, 4),
        "events": count,
        "op": detector.op,
        "threshold": detector.threshold,
    }
    return [Detection("", "custom", window, evidence, {"value": round(value, 2), "count": count})]


def _compare(value: float, op: str, threshold: float) -> bool:
    if op == "gt":
        return value > threshold
    if op == "gte":
        return value >= threshold
    if op == "lt":
        return value < threshold
    if op == "lte":
        return value <= threshold
    return value == threshold


def _field_value(data: dict[str, Any], path: str) -> float | None:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _prune_days(days: dict[str, Any], horizon: datetime, zone: ZoneInfo, keep_days: int) -> None:
    oldest: date = local_date(horizon, zone) - timedelta(days=keep_days)
    for key in [key for key in days if key < oldest.isoformat()]:
        del days[key]


def _prune_list(items: list[str], oldest: str) -> None:
    items[:] = [item for item in items if item >= oldest]
