"""Apply commands: trigger changes to the triggers table and the schedule
ticker, push subscription changes to the subscriptions table."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import faust

from processors.absence import absence_watch
from processors.hooks import apply_hook_record, is_hook_command
from schemas.exceptions import InvalidRecordError
from schemas.push import SUBSCRIPTION_ACTIONS, SubscriptionCommand
from schemas.records import Outcome, OutcomeStatus
from schemas.serialization import loads_json, parse
from schemas.triggers import TriggerCommand
from streams.app import (
    app,
    commands_topic,
    push_subscriptions_table,
    schedule_state_table,
    triggers_table,
    user_subscriptions,
    user_triggers,
)
from streams.publishing import dead_letter, record_outcome, utc_now
from streams.ticker import ticker

logger = logging.getLogger(__name__)


@app.agent(commands_topic)
async def apply_commands(stream: faust.StreamT[bytes]) -> None:
    """Apply each command to the table, then tell the ticker and the history.

    1. Decode and validate the command; a bad one is dead-lettered. A push
       subscription command is applied by ``apply_subscription_command``.
    2. Replace the user's entry in the triggers table.
    3. Reschedule the trigger in this worker's ticker.
    4. Produce the outcome, which also feeds the triggers read model.
    """
    async for event in stream.events():
        # 1. Decode; hook commands share this topic.
        try:
            raw = loads_json(event.value)
            if is_hook_command(raw):
                await apply_hook_record(event, raw)
                continue
            if isinstance(raw, dict) and raw.get("action") in SUBSCRIPTION_ACTIONS:
                await apply_subscription_command(parse(SubscriptionCommand, raw, "invalid_command"))
                continue
            command = parse(TriggerCommand, raw if isinstance(raw, dict) else event.value, "invalid_command")
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

        absence_watch.refresh(command.user_id)

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
    """Change ``entries`` (a copy of the user's table value) as the command requests.

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


async def apply_subscription_command(command: SubscriptionCommand) -> None:
    """Replace the user's entry in the subscriptions table, then produce the
    outcome that feeds the ``push_subscriptions`` read model.

    An unsubscribe of a subscription that does not exist changes nothing.
    """
    entries = dict(user_subscriptions(command.user_id))
    now = utc_now()
    definition: dict[str, Any] | None = None
    if command.action == "subscribe":
        assert command.subscription is not None
        definition = {
            **command.subscription.model_dump(mode="json"),
            "subscription_id": command.subscription_id,
            "saved_at": now.isoformat(),
        }
        entries[command.subscription_id] = definition
        status: OutcomeStatus = "subscription_saved"
    elif entries.pop(command.subscription_id, None) is None:
        logger.info(
            "unsubscribe of unknown subscription ignored user_id=%s subscription_id=%s",
            command.user_id,
            command.subscription_id,
        )
        return
    else:
        status = "subscription_deleted"
    push_subscriptions_table[command.user_id] = entries

    await record_outcome(
        Outcome(
            outcome_id=f"command:{command.command_id}",
            user_id=command.user_id,
            stage="commands",
            status=status,
            source="command",
            reason=command.reason or command.action,
            summary={"subscription_id": command.subscription_id},
            occurred_at=command.issued_at,
            recorded_at=now,
            definition=definition,
        )
    )
    logger.info("push %s user_id=%s subscription_id=%s", command.action, command.user_id, command.subscription_id)
