"""Produce the occurrence of a pattern detection, with its evidence."""

from __future__ import annotations

import logging
from typing import Any

from processors.detectors import Detection
from processors.occurrences import emit_occurrence, record_render_failure
from processors.rendering import render
from schemas.events import EventEnvelope
from schemas.exceptions import TemplateError
from schemas.triggers import TriggerDefinition
from streams import metrics
from streams.publishing import utc_now

logger = logging.getLogger(__name__)


def detection_occurrence_id(user_id: str, trigger_id: str, detector: str, window_id: str) -> str:
    return f"pattern:{user_id}:{trigger_id}:{detector}:{window_id}"


async def emit_detection(definition: TriggerDefinition, envelope: EventEnvelope | None, detection: Detection) -> None:
    """Render and produce the occurrence of one detection, evidence included."""
    occurrence_id = detection_occurrence_id(
        definition.user_id, definition.trigger_id, detection.detector, detection.window_id
    )
    summary: dict[str, Any] = {
        "detector": detection.detector,
        "window_start": detection.window.start.isoformat(),
        "window_end": detection.window.end.isoformat(),
        "evidence": detection.evidence,
    }
    fields = {
        "trigger_name": definition.name,
        "detector": detection.detector,
        "window_start": detection.window.start.isoformat(),
        "window_end": detection.window.end.isoformat(),
        **detection.fields,
    }
    metrics.PATTERN_DETECTIONS.labels(detection.detector).inc()
    logger.info(
        "pattern detected user_id=%s trigger_id=%s detector=%s window=%s",
        definition.user_id,
        definition.trigger_id,
        detection.detector,
        detection.window_id,
    )
    occurred_at = envelope.occurred_at if envelope is not None else utc_now()
    try:
        text = render(definition, fields)
    except TemplateError as exc:
        await record_render_failure(definition, occurrence_id, "pattern", occurred_at, summary, exc)
        return
    await emit_occurrence(
        definition,
        occurrence_id=occurrence_id,
        source="pattern",
        source_ref=envelope.id if envelope is not None else occurrence_id,
        occurred_at=occurred_at,
        text=text,
        summary=summary,
    )
