"""Envelope and event data validation, with stable error codes."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import parse_event
from schemas.exceptions import InvalidRecordError


def envelope(**overrides: object) -> dict[str, object]:
    value: dict[str, object] = {
        "id": "evt-1",
        "type": "task.completed",
        "user_id": "alice",
        "occurred_at": "2026-12-04T10:00:00Z",
        "source": "tasks-service",
        "schema_version": 1,
        "data": {"task_id": "t1", "title": "Write report"},
    }
    value.update(overrides)
    return value


def code_of(raw: bytes) -> str:
    with pytest.raises(InvalidRecordError) as caught:
        parse_event(raw)
    return caught.value.code


def test_valid_event_parses() -> None:
    event = parse_event(orjson.dumps(envelope()))
    assert event.type == "task.completed"
    assert event.data["title"] == "Write report"


def test_not_json_is_malformed() -> None:
    assert code_of(b"{not json") == "malformed_json"


def test_json_array_is_invalid_envelope() -> None:
    assert code_of(b"[1, 2]") == "invalid_envelope"


def test_unknown_schema_version() -> None:
    assert code_of(orjson.dumps(envelope(schema_version=2))) == "unsupported_schema_version"


def test_missing_user_is_invalid_envelope() -> None:
    value = envelope()
    del value["user_id"]
    assert code_of(orjson.dumps(value)) == "invalid_envelope"


def test_naive_timestamp_is_invalid_envelope() -> None:
    assert code_of(orjson.dumps(envelope(occurred_at="2026-12-04T10:00:00"))) == "invalid_envelope"


def test_known_type_with_bad_data() -> None:
    assert code_of(orjson.dumps(envelope(data={"task_id": "t1"}))) == "invalid_event_data"


def test_insight_priority_out_of_range() -> None:
    data = {"insight_id": "i", "title": "x", "priority": 11}
    assert code_of(orjson.dumps(envelope(type="insight.created", data=data))) == "invalid_event_data"


def test_unknown_type_accepted_as_is() -> None:
    event = parse_event(orjson.dumps(envelope(type="habit.streak", data={"days": 3})))
    assert event.data == {"days": 3}


def test_extra_envelope_field_rejected() -> None:
    assert code_of(orjson.dumps(envelope(payload={}))) == "invalid_envelope"
