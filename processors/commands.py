"""Apply trigger commands to the triggers table and the schedule ticker."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import faust

from processors.hooks import apply_hook_record, is_hook_command
from schemas.exceptions import InvalidRecordError
from schemas.records import Outcome, OutcomeStatus
from schemas.serialization import loads_json, parse
from schemas.triggers import TriggerCommand
from streams.app import app, commands_topic, schedule_state_table, triggers_table, user_triggers
from streams.publishing import dead_letter, record_outcome, utc_now
from streams.ticker import ticker

logger = logging.getLogger(__name__)


@app.agent(commands_topic)
async def apply_commands(stream: faust.StreamT[bytes]) -> None:
    """Apply each command to the table, then tell the ticker and the history.

    1. Decode and validate the command; a bad one is dead-lettered.
    2. Replace the user's entry in the triggers table.
    3. Reschedule the trigger in this worker's ticker.
    4. Produce the outcome, which also feeds the triggers read model.
    """
    async for event in stream.events():
        # 1. Decode; hook commands share this topic.
        try:
            value = loads_json(event.value)
            if is_hook_command(value):
                await apply_hook_record(event, value)
                continue
            command = parse(TriggerCommand, value if isinstance(value, dict) else event.value, "invalid_command")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="commands")
            continue

        # 2. Apply.
        entries = dict(user_triggers(command.user_id))
        outcome = apply_command(command, entries)
        if outcome is None:
            continue
        triggers_table[command.user_id] = entries

        # 3. Reschedule.
        entry = entries.get(command.trigger_id)
        if entry is None:
            ticker.remove(command.user_id, command.trigger_id)
        else:
            state = schedule_state_table.get(command.user_id) or {}
            last = state.get(command.trigger_id)
            ticker.upsert(command.user_id, command.trigger_id, entry, datetime.fromisoformat(last) if last else None)

        # 4. Record.
        await record_outcome(outcome)
        logger.info(
            "trigger %s user_id=%s trigger_id=%s offset=%s",
            command.action,
            command.user_id,
            command.trigger_id,
            event.message.offset,
        )


def apply_command(command: TriggerCommand, entries: dict[str, Any]) -> Outcome | None:
    """Change ``entries`` (a copy of the user's table value) as the command says.

    Returns the outcome to record, or ``None`` when the command changes nothing
    (enable, disable or delete of a trigger that does not exist).
    """
    now = utc_now()
    if command.action == "upsert":
        assert command.definition is not None
        definition = command.definition.model_dump(mode="json")
        entries[command.trigger_id] = {"definition": definition, "saved_at": now.isoformat()}
        return _outcome(command, "trigger_saved", now, definition)

    current = entries.get(command.trigger_id)
    if current is None:
        logger.warning(
            "%s of unknown trigger ignored user_id=%s trigger_id=%s",
            command.action,
            command.user_id,
            command.trigger_id,
        )
        return None
    if command.action == "delete":
        del entries[command.trigger_id]
        return _outcome(command, "trigger_deleted", now, None)

    definition = dict(current["definition"])
    definition["enabled"] = command.action == "enable"
    entries[command.trigger_id] = {"definition": definition, "saved_at": now.isoformat()}
    return _outcome(command, "trigger_saved", now, definition)


def _outcome(
    command: TriggerCommand, status: OutcomeStatus, now: datetime, definition: dict[str, Any] | None
) -> Outcome:
    return Outcome(
        outcome_id=f"command:{command.command_id}",
        user_id=command.user_id,
        stage="commands",
        status=status,
        trigger_id=command.trigger_id,
        source="command",
        reason=command.action,
        occurred_at=command.issued_at,
        recorded_at=now,
        definition=definition,
    )
