"""The chat sink: store each delivery as an assistant message in the chat store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
import faust
import orjson

from schemas.exceptions import InvalidRecordError
from schemas.live import LiveEvent, preview_of
from schemas.records import Delivery, Outcome
from schemas.serialization import parse
from sinks.db import TRANSIENT_ERRORS
from sinks.store import pool
from streams import metrics
from streams.app import app, deliveries_topic, live_topic, pushes_topic
from streams.publishing import dead_letter, record_outcome, send_record, utc_now

logger = logging.getLogger(__name__)

UPDATES_SESSION_TITLE = "Luna Updates"
#: Backoff between attempts when the database is unreachable, in seconds;
#: the last value repeats until the write succeeds.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    session_id: str
    #: False when the occurrence was already stored by an earlier delivery.
    created: bool
    #: Set when the trigger named a session that does not exist for this user.
    note: str | None = None


@app.agent(deliveries_topic)
async def store_chat_messages(stream: faust.StreamT[bytes]) -> None:
    """Store every delivery in the chat, once per occurrence.

    1. Decode the delivery; a bad one is dead-lettered.
    2. Insert the message, retrying while the database is unreachable; a
       message already stored for this occurrence is left as it is.
    3. When the delivery lists the ``live`` channel, produce ``new_message``
       to the live topic. A redelivery announces the message again under the
       same dedupe key, and the SSE gateway forwards only the first. When it
       lists ``push``, hand it to the push sink through the pushes topic, so
       that a push always follows a stored message. The pushes topic has one
       consumer of its own because two faust agents on one topic share each
       record's acknowledgement.
    4. Produce the ``delivered`` outcome.
    """
    async for event in stream.events():
        # 1. Decode.
        try:
            delivery = parse(Delivery, event.value, "invalid_delivery")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="chat")
            continue

        # 2. Store.
        stored = await _store_with_retry(delivery)
        metrics.DELIVERIES.labels("chat", "delivered" if stored.created else "duplicate").inc()

        # 3. Announce.
        if "live" in delivery.channels:
            await send_record(live_topic, delivery.user_id, new_message_event(delivery, stored))
        if "push" in delivery.channels:
            await send_record(pushes_topic, delivery.user_id, delivery)

        # 4. Record.
        await record_outcome(
            Outcome(
                outcome_id=f"{delivery.occurrence_id}:chat",
                user_id=delivery.user_id,
                stage="chat",
                status="delivered",
                occurrence_id=delivery.occurrence_id,
                trigger_id=delivery.trigger_id,
                source=delivery.source,
                reason=stored.note or ("stored" if stored.created else "already_stored"),
                summary=delivery.summary,
                occurred_at=delivery.occurred_at,
                recorded_at=utc_now(),
                session_id=stored.session_id,
                message_id=stored.message_id,
            )
        )


def new_message_event(delivery: Delivery, stored: StoredMessage) -> LiveEvent:
    return LiveEvent(
        user_id=delivery.user_id,
        type="new_message",
        data={
            "session_id": stored.session_id,
            "message_id": stored.message_id,
            "occurrence_id": delivery.occurrence_id,
            "trigger_id": delivery.trigger_id,
            "preview": preview_of(delivery.text),
        },
        dedupe_key=f"new_message:{stored.message_id}",
        produced_at=utc_now(),
    )


async def _store_with_retry(delivery: Delivery) -> StoredMessage:
    attempt = 0
    while True:
        try:
            started = time.perf_counter()
            stored = await store_message(await pool.get(), delivery)
            metrics.CHAT_WRITE_SECONDS.observe(time.perf_counter() - started)
            return stored
        except TRANSIENT_ERRORS as exc:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            attempt += 1
            metrics.SINK_RETRIES.labels("chat").inc()
            logger.warning(
                "chat store unreachable user_id=%s occurrence_id=%s (%s); will retry in %.1fs",
                delivery.user_id,
                delivery.occurrence_id,
                exc.__class__.__name__,
                delay,
            )
            await asyncio.sleep(delay)


async def store_message(pool: asyncpg.Pool, delivery: Delivery) -> StoredMessage:
    """Insert the assistant message for ``delivery`` unless it is already stored.

    The common case is one round trip: the session comes from a per-process
    cache and the insert is a single statement that does nothing when the
    occurrence is already stored.
    """
    metadata: dict[str, Any] = {
        "proactive": True,
        "trigger_id": delivery.trigger_id,
        "occurrence_id": delivery.occurrence_id,
        "source": delivery.source,
        "priority": delivery.priority,
        "occurred_at": delivery.occurred_at.isoformat(),
    }
    async with pool.acquire() as connection:
        for attempt in range(2):
            session_id, note = await _session_for(connection, delivery)
            try:
                row = await connection.fetchrow(
                    """
                    INSERT INTO chat_messages (session_id, user_id, role, content, metadata, occurrence_id)
                    VALUES ($1, $2, 'assistant', $3, $4::jsonb, $5)
                    ON CONFLICT (occurrence_id) WHERE occurrence_id IS NOT NULL DO NOTHING
                    RETURNING id
                    """,
                    session_id,
                    delivery.user_id,
                    delivery.text,
                    orjson.dumps(metadata).decode(),
                    delivery.occurrence_id,
                )
            except asyncpg.ForeignKeyViolationError:
                # The cached session was deleted since; look it up again once.
                _session_cache.pop((delivery.user_id, delivery.session_id), None)
                if attempt:
                    raise
                continue
            break
        if row is None:
            existing = await connection.fetchrow(
                "SELECT id, session_id FROM chat_messages WHERE occurrence_id = $1", delivery.occurrence_id
            )
            assert existing is not None
            return StoredMessage(str(existing["id"]), str(existing["session_id"]), created=False)
        return StoredMessage(str(row["id"]), str(session_id), created=True, note=note)


#: (user id, requested session id or None) -> (session to write into, note).
#: Bounded: the oldest entries go first when it is full.
_session_cache: OrderedDict[tuple[str, str | None], tuple[Any, str | None]] = OrderedDict()
SESSION_CACHE_MAX = 100_000


async def _session_for(connection: asyncpg.Connection, delivery: Delivery) -> tuple[Any, str | None]:
    key = (delivery.user_id, delivery.session_id)
    cached = _session_cache.get(key)
    if cached is not None:
        _session_cache.move_to_end(key)
        return cached
    resolved = await _resolve_session(connection, delivery)
    _session_cache[key] = resolved
    if len(_session_cache) > SESSION_CACHE_MAX:
        _session_cache.popitem(last=False)
    return resolved


async def _resolve_session(connection: asyncpg.Connection, delivery: Delivery) -> tuple[Any, str | None]:
    """Return the session to write into and, on a fallback, why."""
    note = None
    if delivery.session_id is not None:
        found = await connection.fetchval(
            "SELECT id FROM chat_sessions WHERE id::text = $1 AND user_id = $2",
            delivery.session_id,
            delivery.user_id,
        )
        if found is not None:
            return found, None
        note = "session_not_found_used_updates"
        logger.warning(
            "session not found, using Luna Updates user_id=%s session_id=%s occurrence_id=%s",
            delivery.user_id,
            delivery.session_id,
            delivery.occurrence_id,
        )
    await connection.execute(
        """
        INSERT INTO chat_sessions (user_id, title, kind) VALUES ($1, $2, 'luna_updates')
        ON CONFLICT (user_id) WHERE kind = 'luna_updates' DO NOTHING
        """,
        delivery.user_id,
        UPDATES_SESSION_TITLE,
    )
    session = await connection.fetchval(
        "SELECT id FROM chat_sessions WHERE user_id = $1 AND kind = 'luna_updates'", delivery.user_id
    )
    return session, note
