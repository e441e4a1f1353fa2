"""Decide whether an occurrence is delivered, and on which channels."""

from __future__ import annotations

import logging

import faust

from schemas.exceptions import InvalidRecordError
from schemas.records import Delivery, Occurrence, Outcome
from schemas.serialization import parse
from schemas.triggers import TriggerDefinition
from schemas.webhooks import HookDefinition
from streams.app import app, deliveries_topic, occurrences_topic, user_hooks, user_triggers
from streams.publishing import dead_letter, record_outcome, send_record, utc_now

logger = logging.getLogger(__name__)


@app.agent(occurrences_topic)
async def decide(stream: faust.StreamT[bytes]) -> None:
    """Apply the delivery policy to each occurrence.

    A trigger disabled or deleted after it matched is skipped with that
    reason; every other occurrence becomes a delivery on its channels.
    """
    async for event in stream.events():
        try:
            occurrence = parse(Occurrence, event.value, "invalid_occurrence")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="decide")
            continue

        reason = skip_reason(occurrence)
        if reason is not None:
            await record_outcome(
                Outcome(
                    outcome_id=f"{occurrence.occurrence_id}:decide",
                    user_id=occurrence.user_id,
                    stage="decide",
                    status="skipped",
                    occurrence_id=occurrence.occurrence_id,
                    trigger_id=occurrence.trigger_id,
                    source=occurrence.source,
                    reason=reason,
                    summary=occurrence.summary,
                    occurred_at=occurrence.occurred_at,
                    recorded_at=utc_now(),
                )
            )
            continue

        delivery = Delivery(**occurrence.model_dump(exclude={"source_ref", "schema_version"}))
        await send_record(deliveries_topic, occurrence.user_id, delivery)


def skip_reason(occurrence: Occurrence) -> str | None:
    """Return why the occurrence must not be delivered, or ``None`` to deliver."""
    if occurrence.source == "webhook":
        hook = user_hooks(occurrence.user_id).get(occurrence.trigger_id)
        if hook is None:
            return "hook_deleted"
        return None if HookDefinition.model_validate(hook).enabled else "hook_disabled"
    entry = user_triggers(occurrence.user_id).get(occurrence.trigger_id)
    if entry is None:
        return "trigger_deleted"
    if not TriggerDefinition.model_validate(entry["definition"]).enabled:
        return "trigger_disabled"
    return None
