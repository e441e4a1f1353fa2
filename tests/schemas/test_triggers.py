"""Trigger definitions are rejected with a reason before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.exceptions import InvalidScheduleError, InvalidTriggerError
from schemas.triggers import parse_trigger


def definition(when: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    value = {"trigger_id": "t1", "user_id": "alice", "name": "check-in", "template": "Hi!", "when": when}
    value.update(overrides)
    return value


@pytest.mark.parametrize(
    "cron",
    [
        "60 * * * *",
        "* * * *",
        "* 24 * * *",
        "0 0 32 * *",
        "0 0 * 13 *",
        "*/0 * * * *",
        "*/90 * * * *",
        "0 0 30 2 *",
        "",
        "@reboot",
    ],
)
def test_invalid_cron_rejected(cron: str) -> None:
    with pytest.raises(InvalidScheduleError):
        parse_trigger(definition({"kind": "cron", "cron": cron, "timezone": "UTC"}))


def test_unknown_zone_rejected() -> None:
    with pytest.raises(InvalidScheduleError, match="America/Nowhere"):
        parse_trigger(definition({"kind": "cron", "cron": "0 9 * * *", "timezone": "America/Nowhere"}))


@pytest.mark.parametrize("cron", ["0 9 * * 7", "0 9 * * 0", "0 9 * * MON-FRI", "0 9 * * mon-fri"])
def test_valid_cron_accepted(cron: str) -> None:
    assert parse_trigger(definition({"kind": "cron", "cron": cron, "timezone": "UTC"})).when.kind == "cron"


def test_bad_template_rejected() -> None:
    with pytest.raises(InvalidTriggerError, match="conversion"):
        parse_trigger(definition({"kind": "event", "event_type": "task.completed"}, template="{title!r}"))


def test_numeric_condition_needs_number() -> None:
    when = {"kind": "event", "event_type": "insight.created", "conditions": [{"field": "priority", "op": "gte"}]}
    with pytest.raises(InvalidTriggerError, match="needs a value"):
        parse_trigger(definition(when))


def test_channels_must_include_chat() -> None:
    with pytest.raises(InvalidTriggerError, match="must include 'chat'"):
        parse_trigger(definition({"kind": "event", "event_type": "task.completed"}, channels=["push"]))


def test_unknown_field_rejected() -> None:
    with pytest.raises(InvalidTriggerError, match="colour: Extra inputs are not permitted"):
        parse_trigger(definition({"kind": "event", "event_type": "task.completed"}, colour="red"))
