"""The history projection: outcomes into ``trigger_history``, ``triggers``
and ``push_subscriptions``."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import faust
import orjson

from schemas.exceptions import InvalidRecordError
from schemas.records import Outcome
from schemas.serialization import parse
from sinks.chat import RETRY_DELAYS_S
from sinks.db import TRANSIENT_ERRORS
from sinks.store import pool
from streams import metrics
from streams.app import app, outcomes_topic
from streams.publishing import dead_letter

logger = logging.getLogger(__name__)


@app.agent(outcomes_topic)
async def project_history(stream: faust.StreamT[bytes]) -> None:
    """Write each outcome to the history, and trigger changes to the read model.

    Writes are idempotent on the outcome id, so a replay of the topic leaves
    the tables as they were.
    """
    async for event in stream.events():
        try:
            outcome = parse(Outcome, event.value, "invalid_outcome")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="history")
            continue

        attempt = 0
        while True:
            try:
                await write_outcome(await pool.get(), outcome)
                break
            except TRANSIENT_ERRORS as exc:
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                attempt += 1
                metrics.SINK_RETRIES.labels("history").inc()
                logger.warning(
                    "history store unreachable user_id=%s outcome_id=%s (%s); will retry in %.1fs",
                    outcome.user_id,
                    outcome.outcome_id,
                    exc.__class__.__name__,
                    delay,
                )
                await asyncio.sleep(delay)


async def write_outcome(pool: asyncpg.Pool, outcome: Outcome) -> None:
    """Insert one history row and apply a trigger or subscription change to its read model."""
    summary = dict(outcome.summary)
    if outcome.session_id is not None:
        summary["session_id"] = outcome.session_id
    if outcome.message_id is not None:
        summary["message_id"] = outcome.message_id
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """
            INSERT INTO trigger_history (outcome_id, occurrence_id, user_id, trigger_id, source, stage,
                                         status, reason, error, summary, occurred_at, recorded_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)
            ON CONFLICT (outcome_id) DO NOTHING
            """,
            outcome.outcome_id,
            outcome.occurrence_id,
            outcome.user_id,
            outcome.trigger_id,
            outcome.source,
            outcome.stage,
            outcome.status,
            outcome.reason,
            outcome.error,
            orjson.dumps(summary).decode(),
            outcome.occurred_at,
            outcome.recorded_at,
        )
        if outcome.status == "trigger_saved" and outcome.definition is not None:
            definition = outcome.definition
            await connection.execute(
                """
                INSERT INTO triggers (trigger_id, user_id, name, kind, enabled, definition, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
                ON CONFLICT (user_id, trigger_id) DO UPDATE SET
                    name = EXCLUDED.name, kind = EXCLUDED.kind, enabled = EXCLUDED.enabled,
                    definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at
                WHERE triggers.updated_at <= EXCLUDED.updated_at
                """,
                outcome.trigger_id,
                outcome.user_id,
                definition["name"],
                definition["when"]["kind"],
                definition["enabled"],
                orjson.dumps(definition).decode(),
                outcome.recorded_at,
            )
        elif outcome.status in ("hook_saved", "hook_deleted"):
            await _write_hook(connection, outcome)
        elif outcome.status == "trigger_deleted":
            await connection.execute(
                "DELETE FROM triggers WHERE trigger_id = $1 AND user_id = $2 AND updated_at <= $3",
                outcome.trigger_id,
                outcome.user_id,
                outcome.recorded_at,
            )
        elif outcome.status == "subscription_saved" and outcome.definition is not None:
            subscription = outcome.definition
            await connection.execute(
                """
                INSERT INTO push_subscriptions
                    (user_id, subscription_id, endpoint, p256dh, auth, user_agent, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (user_id, subscription_id) DO UPDATE SET
                    endpoint = EXCLUDED.endpoint, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
                    user_agent = EXCLUDED.user_agent, updated_at = EXCLUDED.updated_at
                WHERE push_subscriptions.updated_at <= EXCLUDED.updated_at
                """,
                outcome.user_id,
                subscription["subscription_id"],
                subscription["endpoint"],
                subscription["keys"]["p256dh"],
                subscription["keys"]["auth"],
                subscription.get("user_agent"),
                outcome.recorded_at,
            )
        elif outcome.status == "subscription_deleted":
            await connection.execute(
                "DELETE FROM push_subscriptions WHERE user_id = $1 AND subscription_id = $2 AND updated_at <= $3",
                outcome.user_id,
                outcome.summary.get("subscription_id"),
                outcome.recorded_at,
            )


async def _write_hook(connection: asyncpg.Connection, outcome: Outcome) -> None:
    """Apply a hook change to the ``webhook_hooks`` read model.

    A hook id belongs to the user who created it: a row of another user is
    never replaced or deleted.
    """
    if outcome.status == "hook_deleted" or outcome.definition is None:
        await connection.execute(
            "DELETE FROM webhook_hooks WHERE hook_id = $1 AND user_id = $2 AND updated_at <= $3",
            outcome.trigger_id,
            outcome.user_id,
            outcome.recorded_at,
        )
        return
    definition = outcome.definition
    await connection.execute(
        """
        INSERT INTO webhook_hooks (hook_id, user_id, name, scheme, enabled, definition, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
        ON CONFLICT (hook_id) DO UPDATE SET
            name = EXCLUDED.name, scheme = EXCLUDED.scheme, enabled = EXCLUDED.enabled,
            definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at
        WHERE webhook_hooks.user_id = EXCLUDED.user_id AND webhook_hooks.updated_at <= EXCLUDED.updated_at
        """,
        outcome.trigger_id,
        outcome.user_id,
        definition["name"],
        definition["scheme"],
        definition["enabled"],
        orjson.dumps(definition).decode(),
        outcome.recorded_at,
    )
