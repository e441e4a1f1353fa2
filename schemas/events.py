"""The versioned event envelope of the activity topic and the known event types.

Other services produce envelopes to the activity topic. The envelope is the
same for every type; ``data`` is checked against the model of its ``type``
when that type is known here, and kept as it is otherwise, so a service can
publish a new type before this project learns about it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.exceptions import InvalidRecordError
from schemas.serialization import describe_validation_error, loads_json

#: Envelope versions this build understands. A record with any other version
#: is dead-lettered with the code ``unsupported_schema_version``.
SUPPORTED_SCHEMA_VERSIONS = (1,)

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"


class EventEnvelope(BaseModel):
    """One domain event: who it is about, what happened and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="Unique per event; the deduplication key.")
    type: str = Field(pattern=EVENT_TYPE_PATTERN, max_length=100, examples=["task.completed"])
    user_id: str = Field(pattern=USER_ID_PATTERN)
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=100, description="The producing service.")
    schema_version: Literal[1] = 1
    data: dict[str, Any] = Field(default_factory=dict)


class _EventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class TaskCompleted(_EventData):
    task_id: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=500)


class GoalProgress(_EventData):
    goal_id: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=500)
    progress: float = Field(ge=0, le=1, description="Fraction of the goal done.")
    milestone: str | None = Field(default=None, max_length=200)


class InsightCreated(_EventData):
    insight_id: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=500)
    priority: int = Field(ge=0, le=10)
    summary: str = Field(default="", max_length=5000)


class MoodLogged(_EventData):
    sentiment: float = Field(ge=-1, le=1)


class EnergyLogged(_EventData):
    level: float = Field(ge=0, le=1)


class EmailReceived(_EventData):
    # ``from`` is a Python keyword, so the field is aliased.
    sender: str = Field(alias="from", min_length=1)
    subject: str = Field(default="", max_length=1000)


#: Types whose ``data`` is validated; other types are accepted as they are.
EVENT_DATA_MODELS: dict[str, type[_EventData]] = {
    "task.completed": TaskCompleted,
    "goal.progress": GoalProgress,
    "insight.created": InsightCreated,
    "mood.logged": MoodLogged,
    "energy.logged": EnergyLogged,
    "email.received": EmailReceived,
}


def parse_event(raw: bytes | str | dict[str, Any]) -> EventEnvelope:
    """Decode and fully validate an activity record.

    Raises ``InvalidRecordError`` with one of the codes ``malformed_json``,
    ``unsupported_schema_version``, ``invalid_envelope`` or
    ``invalid_event_data``.
    """
    value = raw if isinstance(raw, dict) else loads_json(raw)
    if not isinstance(value, dict):
        raise InvalidRecordError("invalid_envelope", "an event must be a JSON object")

    version = value.get("schema_version", 1)
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidRecordError(
            "unsupported_schema_version",
            f"schema_version {version!r} is not supported; supported: {list(SUPPORTED_SCHEMA_VERSIONS)}",
        )
    try:
        envelope = EventEnvelope.model_validate(value)
    except ValidationError as exc:
        raise InvalidRecordError("invalid_envelope", describe_validation_error(exc)) from exc

    data_model = EVENT_DATA_MODELS.get(envelope.type)
    if data_model is not None:
        try:
            data_model.model_validate(envelope.data)
        except ValidationError as exc:
            raise InvalidRecordError(
                "invalid_event_data",
                f"data of {envelope.type}: {describe_validation_error(exc)}",
            ) from exc
    return envelope


def make_event(
    *,
    event_id: str,
    event_type: str,
    user_id: str,
    occurred_at: datetime,
    source: str,
    data: dict[str, Any],
) -> EventEnvelope:
    """Build and validate an envelope, raising ``InvalidRecordError`` if it is invalid."""
    return parse_event(
        {
            "id": event_id,
            "type": event_type,
            "user_id": user_id,
            "occurred_at": occurred_at.isoformat(),
            "source": source,
            "schema_version": 1,
            "data": data,
        }
    )
