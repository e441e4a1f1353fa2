"""What a due schedule does after downtime: fire once, or record missed runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.triggers import TriggerDefinition
from streams.ticker import next_run, occurrence_id_for, plan_due


def cron_trigger(cron: str, **when: Any) -> TriggerDefinition:
    return TriggerDefinition.model_validate(
        {
            "trigger_id": "t1",
            "user_id": "alice",
            "name": "n",
            "template": "Hi",
            "when": {"kind": "cron", "cron": cron, "timezone": "UTC", **when},
        }
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_on_time_run_fires() -> None:
    plan = plan_due(cron_trigger("0 9 * * *"), at("2026-12-04T09:00:00"), at("2026-12-04T09:00:00.5"))
    assert plan.fire_at == at("2026-12-04T09:00:00")
    assert plan.missed_count == 0
    assert plan.next_at == at("2026-12-05T09:00:00")


def test_late_within_lateness_fires_once() -> None:
    plan = plan_due(cron_trigger("0 9 * * *"), at("2026-12-04T09:00:00"), at("2026-12-04T09:10:00"))
    assert plan.fire_at == at("2026-12-04T09:00:00")
    assert plan.missed_count == 0


def test_good_morning_not_sent_in_afternoon() -> None:
    plan = plan_due(cron_trigger("0 9 * * *"), at("2026-12-04T09:00:00"), at("2026-12-04T15:00:00"))
    assert plan.fire_at is None
    assert plan.missed_count == 1
    assert plan.last_missed == at("2026-12-04T09:00:00")
    assert plan.next_at == at("2026-12-05T09:00:00")


def test_many_missed_runs_fire_latest_once() -> None:
    # Every 5 minutes, down from 08:00 to 09:12 with 15 minutes of lateness:
    # 08:00..08:55 are missed (12 runs), 09:00 and 09:05 are in the window,
    # and only 09:10 fires.
    plan = plan_due(cron_trigger("*/5 * * * *"), at("2026-12-04T08:00:00"), at("2026-12-04T09:12:00"))
    assert plan.fire_at == at("2026-12-04T09:10:00")
    assert plan.missed_count == 14
    assert plan.first_missed == at("2026-12-04T08:00:00")
    assert plan.last_missed == at("2026-12-04T09:05:00")
    assert plan.next_at == at("2026-12-04T09:15:00")


def test_skip_policy_does_not_fire_late() -> None:
    trigger = cron_trigger("0 9 * * *", catch_up="skip")
    plan = plan_due(trigger, at("2026-12-04T09:00:00"), at("2026-12-04T09:10:00"))
    assert plan.fire_at is None
    assert plan.missed_count == 1


def test_missed_count_is_bounded_after_long_downtime() -> None:
    # A minutely schedule down for a year: counting stops at 1000 and the
    # latest run inside the lateness window still fires.
    plan = plan_due(cron_trigger("* * * * *"), at("2025-12-04T09:00:00"), at("2026-12-04T09:00:30"))
    assert plan.fire_at == at("2026-12-04T09:00:00")
    assert plan.missed_count >= 1000
    assert plan.next_at == at("2026-12-04T09:01:00")


def test_reminder_runs_once() -> None:
    reminder = TriggerDefinition.model_validate(
        {
            "trigger_id": "r1",
            "user_id": "alice",
            "name": "call mom",
            "template": "Call mom",
            "when": {"kind": "reminder", "at": "2026-12-04T17:00:00", "timezone": "America/New_York"},
        }
    )
    first = next_run(reminder, None)
    assert first == at("2026-12-04T22:00:00")
    assert next_run(reminder, first) is None


def test_occurrence_id_is_deterministic() -> None:
    instant = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert occurrence_id_for("alice", "t1", instant) == "schedule:alice:t1:2026-12-04T09:00:00Z"
    assert occurrence_id_for("alice", "t1", instant + timedelta(0)) == occurrence_id_for("alice", "t1", instant)
