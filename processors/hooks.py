"""Apply webhook hook commands to the hooks table.

Hook commands share the commands topic with trigger commands; the commands
agent hands each record whose ``kind`` is ``hook`` to ``apply_hook_record``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import faust

from schemas.exceptions import InvalidRecordError
from schemas.records import Outcome, OutcomeStatus
from schemas.serialization import parse
from schemas.webhooks import MAX_SECRETS, HookCommand, HookDefinition, HookSecret
from streams.app import hooks_table, settings, user_hooks
from streams.publishing import dead_letter, record_outcome, utc_now

logger = logging.getLogger(__name__)


def is_hook_command(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "hook"


async def apply_hook_record(event: faust.EventT[bytes], value: dict[str, Any]) -> None:
    """Apply one hook command to the table and record the change.

    1. Validate the command; a bad one is dead-lettered.
    2. Replace the user's entry in the hooks table.
    3. Produce the outcome, which also feeds the ``webhook_hooks`` read model
       that the gateway verifies calls with.
    """
    # 1. Validate.
    try:
        command = parse(HookCommand, value, "invalid_command")
    except InvalidRecordError as exc:
        await dead_letter(event, exc, stage="commands")
        return

    # 2. Apply.
    entries = dict(user_hooks(command.user_id))
    try:
        outcome = apply_hook_command(command, entries, utc_now(), settings.webhook_rotation_grace_s)
    except ValueError as exc:
        # A rotated secret in the wrong form for the hook's scheme.
        await dead_letter(event, InvalidRecordError("invalid_command", str(exc)), stage="commands")
        return
    if outcome is None:
        return
    hooks_table[command.user_id] = entries

    # 3. Record.
    await record_outcome(outcome)
    logger.info(
        "hook %s user_id=%s hook_id=%s offset=%s",
        command.action,
        command.user_id,
        command.hook_id,
        event.message.offset,
    )


def apply_hook_command(
    command: HookCommand, entries: dict[str, Any], now: datetime, default_grace_s: int
) -> Outcome | None:
    """Change ``entries`` (a copy of the user's table value) as the command requests.

    Returns the outcome to record, or ``None`` when the command changes
    nothing: a create of a hook that exists, or any other action on a hook
    that does not. Raises ``ValueError`` when a rotated secret does not fit
    the hook's scheme. ``default_grace_s`` applies when a rotate command
    names no grace period.
    """
    current = entries.get(command.hook_id)
    if command.action == "create":
        assert command.definition is not None
        if current is not None:
            logger.warning("create of existing hook ignored user_id=%s hook_id=%s", command.user_id, command.hook_id)
            return None
        return _save(command, entries, command.definition)
    if current is None:
        logger.warning(
            "%s of unknown hook ignored user_id=%s hook_id=%s", command.action, command.user_id, command.hook_id
        )
        return None
    if command.action == "delete":
        del entries[command.hook_id]
        return _outcome(command, "hook_deleted", now, None)

    hook = HookDefinition.model_validate(current)
    if command.action == "rotate":
        assert command.new_secret is not None
        grace_s = default_grace_s if command.grace_s is None else command.grace_s
        return _save(command, entries, rotate_secrets(hook, command.new_secret, grace_s, now))
    return _save(command, entries, hook.model_copy(update={"enabled": command.action == "enable"}))


def rotate_secrets(hook: HookDefinition, new_secret: HookSecret, grace_s: int, now: datetime) -> HookDefinition:
    """Return ``hook`` with ``new_secret`` current and the older secrets expiring.

    Each older secret stays valid until ``now + grace_s`` or its own earlier
    expiry. Expired ones are dropped, and so are the oldest when more than
    ``MAX_SECRETS`` would remain. Raises ``ValueError`` when ``new_secret``
    does not fit the hook's scheme.
    """
    ends = now + timedelta(seconds=grace_s)
    kept = []
    for item in hook.secrets:
        expires_at = ends if item.expires_at is None else min(item.expires_at, ends)
        if expires_at > now:
            kept.append(item.model_copy(update={"expires_at": expires_at}))
    kept.sort(key=lambda item: item.created_at, reverse=True)
    secrets = [item.model_dump(mode="json") for item in [new_secret, *kept][:MAX_SECRETS]]
    return HookDefinition.model_validate({**hook.model_dump(mode="json"), "secrets": secrets})


def _save(command: HookCommand, entries: dict[str, Any], hook: HookDefinition) -> Outcome:
    definition = hook.model_dump(mode="json")
    entries[command.hook_id] = definition
    return _outcome(command, "hook_saved", utc_now(), definition)


def _outcome(command: HookCommand, status: OutcomeStatus, now: datetime, definition: dict[str, Any] | None) -> Outcome:
    return Outcome(
        outcome_id=f"command:{command.command_id}",
        user_id=command.user_id,
        stage="commands",
        status=status,
        trigger_id=command.hook_id,
        source="command",
        reason=f"hook_{command.action}",
        occurred_at=command.issued_at,
        recorded_at=now,
        definition=definition,
    )
