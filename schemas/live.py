"""Records of the live topic, which the SSE gateway fans out to open tabs.

The chat sink produces ``new_message`` after it stores a message whose
delivery lists the ``live`` channel; the gateway produces ``unread_count``
after messages are marked read. Records are keyed by ``user_id`` like every
other topic, so one user's live events are ordered on one partition.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

LiveEventType = Literal["new_message", "unread_count", "trigger_status"]

#: Maximum length of the message preview in by a ``new_message`` event, in characters.
PREVIEW_MAX_CHARS = 200


class LiveEvent(BaseModel):
    """One event for the open tabs of one user."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = 1

    user_id: str
    type: LiveEventType
    data: dict[str, Any] = Field(default_factory=dict)
    #: Equal for records that describe the same fact (a message stored once
    #: but announced twice after a redelivery); the gateway forwards the first.
    dedupe_key: str | None = None
    produced_at: AwareDatetime


def preview_of(text: str, max_chars: int = PREVIEW_MAX_CHARS) -> str:
    """Shorten ``text`` to at most ``max_chars`` characters, ending in an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1] + "…"
