"""Pattern detectors as pure functions: thresholds, window edges, time zones,
out-of-order and late events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors.detectors import Observation, observe
from processors.windows import local_day, windows_containing
from schemas.events import EventEnvelope, make_event
from schemas.exceptions import InvalidTriggerError
from schemas.triggers import TriggerDefinition, parse_trigger

LATENESS_S = 600.0


def trigger(detector: dict[str, Any], timezone: str = "UTC", trigger_id: str = "p1") -> TriggerDefinition:
    return parse_trigger(
        {
            "trigger_id": trigger_id,
            "user_id": "ana",
            "name": "pattern",
            "template": "hi",
            "when": {"kind": "pattern", "timezone": timezone, "detector": detector},
        }
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ev(event_type: str, when: str, **data: Any) -> EventEnvelope:
    return make_event(
        event_id=f"{event_type}-{when}-{data}",
        event_type=event_type,
        user_id="ana",
        occurred_at=at(when),
        source="tests",
        data=data,
    )


def run(definition: TriggerDefinition, events: list[EventEnvelope]) -> tuple[dict[str, Any], list[Observation]]:
    state: dict[str, Any] = {}
    seen = []
    for item in events:
        result = observe(state, [definition], item, LATENESS_S)
        state = result.state
        seen.append(result)
    return state, seen


def fired(observations: list[Observation]) -> list[int]:
    """Indexes of the events that produced a detection."""
    return [index for index, item in enumerate(observations) if item.detections]


def task(when: str) -> EventEnvelope:
    return ev("task.completed", when, task_id=when, title="t")


def test_productivity_fires_at_fifth_task() -> None:
    definition = trigger({"detector": "high_productivity"})
    events = [task(f"2026-12-04T{hour:02d}:00:00Z") for hour in (8, 9, 10, 11, 12, 13)]
    _, observations = run(definition, events)
    assert fired(observations) == [4]
    detection = observations[4].detections[0]
    assert detection.evidence == {"tasks_completed": 5, "local_date": "2026-12-04", "threshold": 5}
    assert detection.window.start == at("2026-12-04T00:00:00Z")
    assert detection.window.end == at("2026-12-05T00:00:00Z")


def test_productivity_four_tasks_do_not_fire() -> None:
    definition = trigger({"detector": "high_productivity"})
    _, observations = run(definition, [task(f"2026-12-04T0{hour}:00:00Z") for hour in range(4)])
    assert fired(observations) == []


def test_productivity_day_boundary_is_half_open() -> None:
    # Four tasks before local midnight and one exactly at it: two days, no fire.
    definition = trigger({"detector": "high_productivity"}, timezone="Asia/Tokyo")
    events = [task(f"2026-12-04T14:5{minute}:00Z") for minute in range(4)] + [task("2026-12-04T15:00:00Z")]
    state, observations = run(definition, events)
    assert fired(observations) == []
    assert state["triggers"]["p1"]["days"] == {"2026-12-04": 4, "2026-12-05": 1}


def test_productivity_on_fall_back_day_has_25_hours() -> None:
    # 2026-11-01 in New York runs from 04:00Z to 05:00Z next day (25 hours).
    definition = trigger({"detector": "high_productivity"}, timezone="America/New_York")
    events = [
        task(when)
        for when in (
            "2026-11-01T04:00:00Z",
            "2026-11-01T12:00:00Z",
            "2026-11-01T20:00:00Z",
            "2026-11-02T02:00:00Z",
            "2026-11-02T04:59:59Z",
        )
    ]
    _, observations = run(definition, events)
    assert fired(observations) == [4]
    window = observations[4].detections[0].window
    assert window.end - window.start == timedelta(hours=25)


def test_local_day_on_spring_forward_has_23_hours() -> None:
    day = local_day(datetime(2025, 3, 9).date(), ZoneInfo("America/New_York"))
    assert day.end - day.start == timedelta(hours=23)


def test_out_of_order_task_own_day() -> None:
    definition = trigger({"detector": "high_productivity", "tasks": 2})
    events = [task("2026-12-04T23:58:00Z"), task("2026-12-05T00:01:00Z"), task("2026-12-04T23:59:00Z")]
    _, observations = run(definition, events)
    assert fired(observations) == [2]
    assert observations[2].detections[0].evidence["local_date"] == "2026-12-04"


def test_late_event_is_reported_not_merged() -> None:
    definition = trigger({"detector": "high_productivity", "tasks": 3})
    events = [task("2026-12-04T12:30:00Z"), task("2026-12-04T12:20:00Z"), task("2026-12-04T12:19:59Z")]
    state, observations = run(definition, events)
    # Exactly the allowed lateness (600 s) behind still counts; one second more does not.
    assert [item.late for item in observations] == [False, False, True]
    assert state["triggers"]["p1"]["days"] == {"2026-12-04": 2}
    assert fired(observations) == []


def mood(when: str, sentiment: float) -> EventEnvelope:
    return ev("mood.logged", when, sentiment=sentiment)


def test_low_mood_three_readings_below_threshold() -> None:
    definition = trigger({"detector": "low_mood", "consent": True})
    events = [
        mood("2026-12-04T08:00:00Z", -0.5),
        mood("2026-12-04T12:00:00Z", -0.31),
        mood("2026-12-04T18:00:00Z", -0.4),
        mood("2026-12-04T20:00:00Z", -0.9),
    ]
    _, observations = run(definition, events)
    assert fired(observations) == [2]
    evidence = observations[2].detections[0].evidence
    assert evidence["rule"] == "readings"
    assert [value for _, value in evidence["readings"]] == [-0.5, -0.31, -0.4]


def test_low_mood_threshold_is_strict() -> None:
    definition = trigger({"detector": "low_mood", "consent": True})
    events = [
        mood("2026-12-04T08:00:00Z", -0.5),
        mood("2026-12-04T12:00:00Z", -0.3),
        mood("2026-12-04T18:00:00Z", -0.4),
    ]
    _, observations = run(definition, events)
    assert fired(observations) == []


def test_low_mood_fires_again_after_recovery() -> None:
    definition = trigger({"detector": "low_mood", "consent": True, "readings": 2, "days": 14})
    values = [-0.5, -0.5, -0.6, 0.2, -0.4, -0.7]
    events = [mood(f"2026-12-04T{8 + index:02d}:00:00Z", value) for index, value in enumerate(values)]
    _, observations = run(definition, events)
    assert fired(observations) == [1, 5]


def test_low_mood_daily_average_three_days() -> None:
    definition = trigger({"detector": "low_mood", "consent": True, "readings": 20}, timezone="Europe/Berlin")
    events = [
        mood("2026-12-02T10:00:00Z", -0.6),
        mood("2026-12-02T11:00:00Z", 0.0),  # avg -0.3: not below
        mood("2026-12-03T10:00:00Z", -0.5),
        mood("2026-12-04T10:00:00Z", -0.4),
        mood("2026-12-05T10:00:00Z", -0.35),
    ]
    _, observations = run(definition, events)
    assert fired(observations) == [4]
    evidence = observations[4].detections[0].evidence
    assert evidence["rule"] == "daily_average"
    assert evidence["days"] == {"2026-12-03": -0.5, "2026-12-04": -0.4, "2026-12-05": -0.35}


def energy(when: str, level: float) -> EventEnvelope:
    return ev("energy.logged", when, level=level)


def test_energy_dip_below_own_baseline() -> None:
    definition = trigger(
        {
            "detector": "energy_dip",
            "window_s": 3600,
            "baseline_windows": 3,
            "min_baseline_windows": 3,
            "min_readings": 2,
            "fraction": 0.25,
        }
    )
    events = []
    for hour in (8, 9, 10):
        events += [energy(f"2026-12-04T{hour:02d}:10:00Z", 0.8), energy(f"2026-12-04T{hour:02d}:40:00Z", 0.8)]
    # Baseline 0.8; 0.6 is exactly 25 % lower, which is not below the line.
    events += [energy("2026-12-04T11:10:00Z", 0.6), energy("2026-12-04T11:20:00Z", 0.6)]
    events += [energy("2026-12-04T11:30:00Z", 0.3)]
    _, observations = run(definition, events)
    assert fired(observations) == [8]
    evidence = observations[8].detections[0].evidence
    assert evidence["baseline"] == 0.8
    assert evidence["window_average"] == 0.5


def message(when: str) -> EventEnvelope:
    return ev("message.sent", when, chars=10)


def custom(**overrides: Any) -> TriggerDefinition:
    detector = {
        "detector": "custom",
        "event_type": "message.sent",
        "aggregate": "count",
        "window": {"size_s": 3600},
        "op": "gte",
        "threshold": 3,
    }
    detector.update(overrides)
    return trigger(detector)


def test_custom_count_tumbling_window_edges() -> None:
    events = [
        message("2026-12-04T09:00:00Z"),
        message("2026-12-04T09:30:00Z"),
        message("2026-12-04T10:00:00Z"),
        message("2026-12-04T10:10:00Z"),
        message("2026-12-04T10:59:59Z"),
    ]
    _, observations = run(custom(), events)
    assert fired(observations) == [4]
    window = observations[4].detections[0].window
    assert (window.start, window.end) == (at("2026-12-04T10:00:00Z"), at("2026-12-04T11:00:00Z"))


def test_custom_hopping_window_fires_per_window() -> None:
    definition = custom(window={"size_s": 3600, "step_s": 1800}, threshold=2)
    events = [message("2026-12-04T09:40:00Z"), message("2026-12-04T10:10:00Z")]
    _, observations = run(definition, events)
    starts = [item.window.start for item in observations[1].detections]
    assert starts == [at("2026-12-04T09:30:00Z")]


def test_custom_sum_with_cooldown() -> None:
    definition = custom(aggregate="sum", field="chars", threshold=20, cooldown_s=7200)
    events = [message(f"2026-12-04T{hour:02d}:{minute:02d}:00Z") for hour in (9, 10, 11) for minute in (0, 30)]
    _, observations = run(definition, events)
    # 09:00 window fires; the 10:00 window is inside the cooldown; 11:00 fires.
    assert fired(observations) == [1, 5]


def test_custom_below_fires_when_window_closes() -> None:
    definition = custom(op="lt", threshold=2)
    events = [
        message("2026-12-04T09:05:00Z"),
        message("2026-12-04T10:05:00Z"),
        message("2026-12-04T10:09:59Z"),
        message("2026-12-04T10:10:00Z"),
    ]
    _, observations = run(definition, events)
    # The 09:00 window closes once the watermark passes 10:00 plus 600 s.
    assert fired(observations) == [3]
    assert observations[3].detections[0].evidence["value"] == 1


def test_custom_rule_validation_messages() -> None:
    with pytest.raises(InvalidTriggerError, match="size_s 7000 must divide a day"):
        custom(window={"size_s": 7000})
    with pytest.raises(InvalidTriggerError, match="needs a field"):
        custom(aggregate="avg")
    with pytest.raises(InvalidTriggerError, match="step_s 1700 must divide size_s 3600"):
        custom(window={"size_s": 3600, "step_s": 1700})


def test_state_input_is_not_mutated() -> None:
    definition = trigger({"detector": "high_productivity"})
    state: dict[str, Any] = {}
    first = observe(state, [definition], task("2026-12-04T08:00:00Z"), LATENESS_S)
    before = repr(first.state)
    observe(first.state, [definition], task("2026-12-04T09:00:00Z"), LATENESS_S)
    assert repr(first.state) == before
    assert state == {}


def test_old_windows_are_dropped() -> None:
    definition = trigger({"detector": "high_productivity"})
    events = [task(f"2026-12-{day:02d}T12:00:00Z") for day in range(1, 11)]
    state, _ = run(definition, events)
    assert sorted(state["triggers"]["p1"]["days"]) == ["2026-12-09", "2026-12-10"]


def test_windows_containing_fall_back_hour() -> None:
    zone = ZoneInfo("America/New_York")
    (window,) = windows_containing(at("2026-11-01T06:30:00Z"), zone, 3600, 3600)
    assert window.start == at("2026-11-01T05:00:00Z")
    assert window.end == at("2026-11-01T07:00:00Z")


def test_low_mood_needs_consent() -> None:
    with pytest.raises(InvalidTriggerError, match="low mood detection is opt-in"):
        trigger({"detector": "low_mood"})
