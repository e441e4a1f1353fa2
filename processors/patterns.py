"""Pattern detection on the activity stream: windowed per-user state and detections."""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.absence import absence_watch
from processors.detections import emit_detection
from processors.detectors import observe
from schemas.events import EventEnvelope
from schemas.triggers import TriggerDefinition
from streams import metrics
from streams.app import pattern_state_table, settings, user_triggers

logger = logging.getLogger(__name__)


async def fold_patterns(event: faust.EventT[bytes], envelope: EventEnvelope) -> None:
    """Fold one valid activity event into the user's pattern state.

    The matching agent calls this for every event it decoded, so one agent
    consumes the activity topic: two faust agents on one topic share each
    record's acknowledgement.

    1. Update the user's windows, keeping the whole value (``table[k] = v``).
    2. Tell the absence detector the user was seen.
    3. Produce an occurrence for each detection.
    """
    triggers = pattern_triggers(user_triggers(envelope.user_id))
    if not triggers:
        return

    # 1. Update.
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
        return
    pattern_state_table[envelope.user_id] = observation.state

    # 2. Seen.
    absence_watch.seen(envelope.user_id, observation.state.get("last_seen"))

    # 3. Produce.
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
