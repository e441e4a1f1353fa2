"""Match activity events against the user's event triggers."""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.occurrences import emit_occurrence, record_render_failure
from processors.patterns import fold_patterns
from processors.rendering import event_fields, render, summarise
from schemas.events import EventEnvelope, parse_event
from schemas.exceptions import InvalidRecordError, TemplateError
from schemas.triggers import Condition, EventMatch, TriggerDefinition
from streams import metrics
from streams.app import activity_topic, app, user_triggers
from streams.publishing import dead_letter

logger = logging.getLogger(__name__)

_MISSING = object()


@app.agent(activity_topic)
async def match_activity(stream: faust.StreamT[bytes]) -> None:
    """Turn each activity event into one occurrence per matching trigger.

    1. Decode and validate the envelope; a bad record is dead-lettered.
    2. Fold the event into the user's pattern windows.
    3. Find the user's enabled event triggers whose type and conditions match.
    4. Render each message and produce the occurrence.
    """
    async for event in stream.events():
        # 1. Decode.
        try:
            envelope = parse_event(event.value)
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="match")
            continue

        # 2. Patterns.
        await fold_patterns(event, envelope)

        # 3. Match.
        matched = matching_triggers(envelope, user_triggers(envelope.user_id))
        metrics.EVENTS_CONSUMED.labels("yes" if matched else "no").inc()
        if not matched:
            logger.debug(
                "no trigger matched topic=%s partition=%s offset=%s user_id=%s type=%s",
                event.message.topic,
                event.message.partition,
                event.message.offset,
                envelope.user_id,
                envelope.type,
            )
            continue

        # 4. Render and produce.
        for definition in matched:
            await _emit_for_event(definition, envelope)


def matching_triggers(envelope: EventEnvelope, entries: dict[str, Any]) -> list[TriggerDefinition]:
    """Return the enabled event triggers of one user that match the event."""
    result = []
    for entry in entries.values():
        definition = TriggerDefinition.model_validate(entry["definition"])
        when = definition.when
        if not definition.enabled or not isinstance(when, EventMatch) or when.event_type != envelope.type:
            continue
        if all(condition_holds(condition, envelope.data) for condition in when.conditions):
            result.append(definition)
    return sorted(result, key=lambda item: item.trigger_id)


def condition_holds(condition: Condition, data: dict[str, Any]) -> bool:
    value: Any = data
    for key in condition.field.split("."):
        value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    if condition.op == "exists":
        return value is not _MISSING and value is not None and value != ""
    if value is _MISSING:
        return False
    if condition.op == "eq":
        return bool(value == condition.value)
    if condition.op == "ne":
        return bool(value != condition.value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    threshold = condition.value
    assert isinstance(threshold, int | float)
    if condition.op == "gt":
        return value > threshold
    if condition.op == "gte":
        return value >= threshold
    if condition.op == "lt":
        return value < threshold
    return value <= threshold


async def _emit_for_event(definition: TriggerDefinition, envelope: EventEnvelope) -> None:
    occurrence_id = f"event:{envelope.user_id}:{envelope.id}:{definition.trigger_id}"
    fields = event_fields(definition, envelope)
    summary = {"event_type": envelope.type, "event_id": envelope.id, **summarise(envelope.data)}
    try:
        text = render(definition, fields)
    except TemplateError as exc:
        await record_render_failure(definition, occurrence_id, "event", envelope.occurred_at, summary, exc)
        return
    await emit_occurrence(
        definition,
        occurrence_id=occurrence_id,
        source="event",
        source_ref=envelope.id,
        occurred_at=envelope.occurred_at,
        text=text,
        summary=summary,
    )
