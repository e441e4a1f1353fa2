"""Pattern detectors: events per second and state size over many users."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from processors.detectors import observe
from schemas.events import EventEnvelope, make_event
from schemas.triggers import TriggerDefinition, parse_trigger
from tests.benchmarks.report import Figure, Section

START = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
LATENESS_S = 600.0


def triggers_for(user_id: str) -> list[TriggerDefinition]:
    common = {"user_id": user_id, "name": "n", "template": "x"}
    return [
        parse_trigger(
            {
                **common,
                "trigger_id": "busy",
                "when": {"kind": "pattern", "timezone": "Europe/Berlin", "detector": {"detector": "high_productivity"}},
            }
        ),
        parse_trigger(
            {
                **common,
                "trigger_id": "chatty",
                "when": {
                    "kind": "pattern",
                    "timezone": "Europe/Berlin",
                    "detector": {
                        "detector": "custom",
                        "event_type": "task.completed",
                        "aggregate": "count",
                        "window": {"size_s": 3600, "step_s": 900},
                        "op": "gte",
                        "threshold": 4,
                    },
                },
            }
        ),
    ]


def events_for(users: int, per_user: int) -> list[EventEnvelope]:
    events = []
    for round_number in range(per_user):
        occurred = START + timedelta(minutes=round_number * 7)
        for number in range(users):
            events.append(
                make_event(
                    event_id=f"e-{number}-{round_number}",
                    event_type="task.completed",
                    user_id=f"user-{number}",
                    occurred_at=occurred,
                    source="bench",
                    data={"task_id": str(round_number), "title": "t"},
                )
            )
    return events


def fold(users: int, per_user: int) -> tuple[float, dict[str, dict[str, Any]], int]:
    """Fold every event into per-user state; return events/s, states and detections."""
    definitions = triggers_for("template-user")
    by_user = {
        f"user-{number}": [d.model_copy(update={"user_id": f"user-{number}"}) for d in definitions]
        for number in range(users)
    }
    events = events_for(users, per_user)
    states: dict[str, dict[str, Any]] = {}
    detections = 0
    started = time.perf_counter()
    for item in events:
        result = observe(states.get(item.user_id, {}), by_user[item.user_id], item, LATENESS_S)
        states[item.user_id] = result.state
        detections += len(result.detections)
    return len(events) / (time.perf_counter() - started), states, detections


def run(users: int, per_user: int) -> Section:
    rate, states, detections = fold(users, per_user)
    rate_small, _, _ = fold(users // 10, per_user)
    serialized = sum(len(orjson.dumps(state)) for state in states.values())
    tracemalloc.start()
    sample = {key: orjson.loads(orjson.dumps(value)) for key, value in list(states.items())[:10_000]}
    sample_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del sample
    section = Section(
        "Pattern detectors",
        f"The detector state machine (`processors.detectors.observe`) in one process: {users:,} users with two "
        f"pattern triggers each (high productivity, and a hopping-window count), {per_user} task events per user "
        f"in event-time order. Baseline: the same fold for {users // 10:,} users, so the ratio shows how the "
        "per-event cost grows with ten times the users.",
        [
            Figure(f"events/s, {users:,} users", rate, "events/s", baseline=rate_small, goal="ratio about 1"),
            Figure("state per user, as stored in the changelog", serialized / users, "bytes", higher_is_better=False),
            Figure("state per user, in memory", sample_bytes / min(10_000, users), "bytes", higher_is_better=False),
        ],
    )
    section.notes.append(f"{detections:,} detections ({detections / users:.1f} per user).")
    section.notes.append(
        "Not measured yet: a worker's recovery time from the changelog after a restart. Recovery reads one "
        "changelog record per user, so it grows with users times the state size above."
    )
    return section
