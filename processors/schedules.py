"""Turn schedule ticks into occurrences and remember the last run."""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.occurrences import emit_occurrence, record_render_failure
from processors.rendering import render, schedule_fields
from schemas.exceptions import InvalidRecordError, TemplateError
from schemas.records import Outcome, OutcomeStatus, Tick
from schemas.serialization import parse
from schemas.triggers import TriggerDefinition
from streams.app import app, schedule_state_table, ticks_topic, user_triggers
from streams.publishing import dead_letter, record_outcome, utc_now

logger = logging.getLogger(__name__)


@app.agent(ticks_topic)
async def handle_ticks(stream: faust.StreamT[bytes]) -> None:
    """Render each fired tick into an occurrence; record missed runs.

    1. Decode the tick; a bad one is dead-lettered.
    2. Remember the scheduled instant as the trigger's last run, so the
       ticker resumes after it when the worker restarts.
    3. Produce the occurrence (or the ``missed`` or ``skipped`` outcome).
    """
    async for event in stream.events():
        # 1. Decode.
        try:
            tick = parse(Tick, event.value, "invalid_tick")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="ticks")
            continue

        # 2. Remember.
        state = dict(schedule_state_table.get(tick.user_id) or {})
        previous = state.get(tick.trigger_id)
        if previous is None or previous < tick.scheduled_at.isoformat():
            state[tick.trigger_id] = tick.scheduled_at.isoformat()
            schedule_state_table[tick.user_id] = state

        # 3. Produce.
        await handle_tick(tick)


async def handle_tick(tick: Tick) -> None:
    entry = user_triggers(tick.user_id).get(tick.trigger_id)
    summary: dict[str, Any] = {"scheduled_at": tick.scheduled_at.isoformat(), "kind": tick.kind}
    if tick.kind == "missed":
        summary["missed_count"] = tick.missed_count
        if tick.first_missed_at is not None:
            summary["first_missed_at"] = tick.first_missed_at.isoformat()
        await _record(tick, "missed", "missed_while_down", summary)
        return
    if entry is None:
        await _record(tick, "skipped", "trigger_deleted", summary)
        return
    definition = TriggerDefinition.model_validate(entry["definition"])
    if not definition.enabled:
        await _record(tick, "skipped", "trigger_disabled", summary)
        return

    try:
        text = render(definition, schedule_fields(definition, tick.scheduled_at))
    except TemplateError as exc:
        await record_render_failure(definition, tick.occurrence_id, "schedule", tick.scheduled_at, summary, exc)
        return
    await emit_occurrence(
        definition,
        occurrence_id=tick.occurrence_id,
        source="schedule",
        source_ref=tick.occurrence_id,
        occurred_at=tick.scheduled_at,
        text=text,
        summary=summary,
    )


async def _record(tick: Tick, status: OutcomeStatus, reason: str, summary: dict[str, Any]) -> None:
    logger.info("tick %s user_id=%s trigger_id=%s reason=%s", status, tick.user_id, tick.trigger_id, reason)
    await record_outcome(
        Outcome(
            outcome_id=f"{tick.occurrence_id}:{status}",
            user_id=tick.user_id,
            stage="schedule",
            status=status,
            occurrence_id=tick.occurrence_id,
            trigger_id=tick.trigger_id,
            source="schedule",
            reason=reason,
            summary=summary,
            occurred_at=tick.scheduled_at,
            recorded_at=utc_now(),
        )
    )
