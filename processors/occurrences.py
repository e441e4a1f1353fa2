"""Produce occurrences, and record the ones whose message cannot be rendered."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from schemas.exceptions import TemplateError
from schemas.records import Occurrence, Outcome, Source
from schemas.triggers import Channel, Priority
from streams import metrics
from streams.app import occurrences_topic
from streams.publishing import record_outcome, send_record, utc_now

logger = logging.getLogger(__name__)


class MessageSource(Protocol):
    """Fields an occurrence needs from the trigger or hook that caused it."""

    @property
    def user_id(self) -> str: ...
    @property
    def trigger_id(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def channels(self) -> list[Channel]: ...
    @property
    def priority(self) -> Priority: ...


async def emit_occurrence(
    definition: MessageSource,
    *,
    occurrence_id: str,
    source: Source,
    source_ref: str,
    occurred_at: datetime,
    text: str,
    summary: dict[str, Any],
) -> None:
    occurrence = Occurrence(
        occurrence_id=occurrence_id,
        user_id=definition.user_id,
        trigger_id=definition.trigger_id,
        source=source,
        source_ref=source_ref,
        occurred_at=occurred_at,
        text=text,
        session_id=definition.session_id,
        channels=definition.channels,
        priority=definition.priority,
        summary=summary,
    )
    await send_record(occurrences_topic, definition.user_id, occurrence)
    metrics.OCCURRENCES.labels(source).inc()


async def record_render_failure(
    definition: MessageSource,
    occurrence_id: str,
    source: Source,
    occurred_at: datetime,
    summary: dict[str, Any],
    error: TemplateError,
) -> None:
    """Record a message that could not be rendered as ``failed`` in the history."""
    metrics.RENDER_ERRORS.inc()
    logger.warning(
        "template failed user_id=%s trigger_id=%s occurrence_id=%s: %s",
        definition.user_id,
        definition.trigger_id,
        occurrence_id,
        error,
    )
    await record_outcome(
        Outcome(
            outcome_id=f"{occurrence_id}:render",
            user_id=definition.user_id,
            stage="render",
            status="failed",
            occurrence_id=occurrence_id,
            trigger_id=definition.trigger_id,
            source=source,
            reason="render_error",
            error=str(error),
            summary=summary,
            occurred_at=occurred_at,
            recorded_at=utc_now(),
        )
    )
