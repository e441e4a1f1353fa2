"""Records of the internal topics: ticks, occurrences, deliveries, outcomes
and dead letters.

Every record is keyed by ``user_id`` on its topic, and every occurrence has a
deterministic id, so that replaying a topic reproduces the same ids and the
sinks can drop what they have already done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.triggers import Channel, Priority

Source = Literal["schedule", "event", "webhook", "external", "pattern"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = 1


class Tick(_Record):
    """A schedule came due (``fire``) or was missed while the worker was down."""

    kind: Literal["fire", "missed"]
    occurrence_id: str
    user_id: str
    trigger_id: str
    scheduled_at: AwareDatetime
    emitted_at: AwareDatetime
    #: For ``missed``: how many fire times were skipped, the first of them
    #: being ``first_missed_at`` and the last ``scheduled_at``.
    missed_count: int = 0
    first_missed_at: AwareDatetime | None = None


class Occurrence(_Record):
    """A trigger matched; the message is rendered and waits for the policy."""

    occurrence_id: str
    user_id: str
    trigger_id: str
    source: Source
    #: The id of the record that caused it: an event id, webhook id or tick.
    source_ref: str
    occurred_at: AwareDatetime
    text: str
    session_id: str | None = None
    channels: list[Channel]
    priority: Priority = "normal"
    #: Small, non-secret summary of the input, shown in the history.
    summary: dict[str, Any] = Field(default_factory=dict)


class Delivery(_Record):
    """A decision to deliver one occurrence on its channels."""

    occurrence_id: str
    user_id: str
    trigger_id: str
    source: Source
    occurred_at: AwareDatetime
    text: str
    session_id: str | None = None
    channels: list[Channel]
    priority: Priority = "normal"
    summary: dict[str, Any] = Field(default_factory=dict)


OutcomeStatus = Literal[
    "matched",
    "delivered",
    "failed",
    "skipped",
    "missed",
    "trigger_saved",
    "trigger_deleted",
    "hook_saved",
    "hook_deleted",
    "rejected",
    "retrying",
    "subscription_saved",
    "subscription_deleted",
]


class Outcome(_Record):
    """The result of one stage for one occurrence or command; feeds the history."""

    outcome_id: str
    user_id: str
    stage: str
    status: OutcomeStatus
    occurrence_id: str | None = None
    trigger_id: str | None = None
    source: Source | Literal["command"] | None = None
    reason: str | None = None
    error: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime | None = None
    recorded_at: AwareDatetime
    #: For ``trigger_saved`` and ``hook_saved``: the definition as stored, for
    #: the read model (a hook's definition contains its secrets); for
    #: ``subscription_saved``: the push subscription.
    definition: dict[str, Any] | None = None
    #: For ``delivered`` to chat: where the message landed.
    session_id: str | None = None
    message_id: str | None = None


class DeadLetter(_Record):
    """A record that could not be processed, with where it came from."""

    error_code: str
    error: str
    stage: str
    topic: str
    partition: int
    offset: int
    key: str | None
    #: The original value: UTF-8 text when it decodes, else base64.
    value: str
    value_encoding: Literal["utf-8", "base64"]
    failed_at: datetime
