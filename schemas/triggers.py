"""Trigger definitions and the commands that create, change and delete them.

A trigger defines when Luna speaks first (a cron schedule, a one-shot reminder
or a matching domain event), what she writes (a template) and where (a chat
session and delivery channels). Definitions reach the worker only through the
commands topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.cron import load_zone, parse_cron
from schemas.events import EVENT_TYPE_PATTERN, USER_ID_PATTERN
from schemas.exceptions import InvalidScheduleError, InvalidTriggerError, TemplateError
from schemas.patterns import PatternMatch
from schemas.serialization import describe_validation_error, loads_json
from schemas.template import parse_template

TRIGGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
FIELD_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
DEFAULT_MAX_LATENESS_S = 15 * 60

Channel = Literal["chat", "push", "live"]
Priority = Literal["low", "normal", "high", "critical"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CronSchedule(_Frozen):
    """Fires at every time a cron expression names, in the trigger's zone."""

    kind: Literal["cron"] = "cron"
    cron: str = Field(examples=["0 9 * * *", "@daily"])
    timezone: str = Field(examples=["America/New_York"])
    #: A fire missed by more than this (the worker was down) is recorded as
    #: missed instead of being sent late.
    max_lateness_s: int = Field(default=DEFAULT_MAX_LATENESS_S, ge=0, le=7 * 24 * 3600)
    catch_up: Literal["fire_once", "skip"] = "fire_once"

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        parse_cron(value)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        load_zone(value)
        return value


class Reminder(_Frozen):
    """Fires once, at ``at``.

    ``at`` is either an instant with an offset, or a local wall time that is
    read in ``timezone`` ("17:00 in America/New_York").
    """

    kind: Literal["reminder"] = "reminder"
    at: datetime
    timezone: str = "UTC"
    max_lateness_s: int = Field(default=DEFAULT_MAX_LATENESS_S, ge=0, le=7 * 24 * 3600)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        load_zone(value)
        return value


class Condition(_Frozen):
    """A test on one field of the event's ``data``."""

    field: str = Field(pattern=FIELD_PATH_PATTERN)
    op: Literal["exists", "eq", "ne", "gt", "gte", "lt", "lte"]
    value: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _check_value(self) -> Condition:
        if self.op == "exists":
            if self.value is not None:
                raise ValueError("condition 'exists' takes no value")
        elif self.value is None:
            raise ValueError(f"condition {self.op!r} on {self.field!r} needs a value")
        elif self.op in ("gt", "gte", "lt", "lte") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ValueError(f"condition {self.op!r} on {self.field!r} needs a number")
        return self


class EventMatch(_Frozen):
    """Fires for every event of ``event_type`` that meets all ``conditions``."""

    kind: Literal["event"] = "event"
    event_type: str = Field(pattern=EVENT_TYPE_PATTERN)
    conditions: list[Condition] = Field(default_factory=list, max_length=20)


def _default_channels() -> list[Channel]:
    return ["chat"]


When = Annotated[CronSchedule | Reminder | EventMatch | PatternMatch, Field(discriminator="kind")]


class TriggerDefinition(_Frozen):
    """One user's trigger as stored in the triggers table."""

    trigger_id: str = Field(pattern=TRIGGER_ID_PATTERN)
    user_id: str = Field(pattern=USER_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    when: When
    template: str
    #: Chat session that receives the message; ``None`` means the user's
    #: "Luna Updates" session, created on first use.
    session_id: str | None = Field(default=None, max_length=100)
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    priority: Priority = "normal"
    enabled: bool = True

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        parse_template(value)
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[Channel]) -> list[Channel]:
        if "chat" not in value:
            raise ValueError("channels must include 'chat': the chat message is the record")
        return sorted(set(value), key=value.index)


def parse_trigger(value: dict[str, Any] | bytes | str) -> TriggerDefinition:
    """Validate a trigger definition.

    Raises ``InvalidTriggerError`` (or its subclass ``InvalidScheduleError``)
    with a message that names the invalid field and the reason.
    """
    raw = value if isinstance(value, dict) else loads_json(value)
    try:
        return TriggerDefinition.model_validate(raw)
    except ValidationError as exc:
        cause = _first_cause(exc)
        if isinstance(cause, InvalidScheduleError):
            raise InvalidScheduleError(str(cause)) from exc
        if isinstance(cause, TemplateError):
            raise InvalidTriggerError(str(cause)) from exc
        raise InvalidTriggerError(f"invalid trigger: {describe_validation_error(exc)}") from exc


def _first_cause(exc: ValidationError) -> BaseException | None:
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, BaseException):
            return cause
    return None


class TriggerCommand(_Frozen):
    """A change to one trigger, published to the commands topic.

    ``upsert`` carries the full new definition; ``enable``, ``disable`` and
    ``delete`` name the trigger only.
    """

    command_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(pattern=USER_ID_PATTERN)
    issued_at: AwareDatetime
    action: Literal["upsert", "enable", "disable", "delete"]
    trigger_id: str = Field(pattern=TRIGGER_ID_PATTERN)
    definition: TriggerDefinition | None = None
    schema_version: Literal[1] = 1

    @model_validator(mode="after")
    def _check_definition(self) -> TriggerCommand:
        if self.action == "upsert":
            if self.definition is None:
                raise ValueError("an upsert command needs a definition")
            if self.definition.trigger_id != self.trigger_id or self.definition.user_id != self.user_id:
                raise ValueError("the definition's trigger_id and user_id must match the command's")
        elif self.definition is not None:
            raise ValueError(f"a {self.action} command takes no definition")
        return self
