"""The pattern agent: windowed per-user activity state and detections."""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.absence import absence_watch
from processors.detections import emit_detection
from processors.detectors import observe
from schemas.events import parse_event
from schemas.exceptions import InvalidRecordError
from schemas.triggers import TriggerDefinition
from streams import metrics
from streams.app import activity_topic, app, pattern_state_table, settings, user_triggers

logger = logging.getLogger(__name__)


@app.agent(activity_topic)
async def detect_patterns(stream: faust.StreamT[bytes]) -> None:
    """Fold each activity event into the user's pattern state.

    1. Decode the event; an invalid one is skipped here because the matching
       agent on the same topic dead-letters it.
    2. Update the user's windows, keeping the whole value (``table[k] = v``).
    3. Tell the absence detector the user was seen.
    4. Produce an occurrence for each detection.
    """
    async for event in stream.events():
        # 1. Decode.
        try:
            envelope = parse_event(event.value)
        except InvalidRecordError:
            continue
        triggers = pattern_triggers(user_triggers(envelope.user_id))
        if not triggers:
            continue

        # 2. Update.
        state = pattern_state_table.get(envelope.user_id) or {}
        observation = observe(state, triggers, envelope, settings.pattern_allowed_lateness_s)
        if observation.late:
            metrics.PATTERN_LATE_EVENTS.inc()
            logger.info(
                "late event left out of pattern windows topic=%s partition=%s offset=%s user_id=%s occurred_at=%s",
                event.message.topic,
                event.message.partition,
                event.message.offset,
                envelope.user_id,
                envelope.occurred_at.isoformat(),
            )
            continue
        pattern_state_table[envelope.user_id] = observation.state

        # 3. Seen.
        absence_watch.seen(envelope.user_id, observation.state.get("last_seen"))

        # 4. Produce.
        by_id = {definition.trigger_id: definition for definition in triggers}
        for detection in observation.detections:
            await emit_detection(by_id[detection.trigger_id], envelope, detection)


def pattern_triggers(entries: dict[str, Any]) -> list[TriggerDefinition]:
    """Return the user's enabled pattern triggers, in a stable order."""
    found = []
    for entry in entries.values():
        definition = TriggerDefinition.model_validate(entry["definition"])
        if definition.enabled and definition.when.kind == "pattern":
            found.append(definition)
    return sorted(found, key=lambda item: item.trigger_id)
