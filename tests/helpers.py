"""Small builders shared by the integration tests."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.events import EventEnvelope, make_event
from tests.stack import Deployment, wait_until


def event(user_id: str, event_type: str, data: dict[str, Any], event_id: str | None = None) -> EventEnvelope:
    return make_event(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        user_id=user_id,
        occurred_at=datetime.now(UTC),
        source="tests",
        data=data,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def messages_of(deployment: Deployment, user_id: str) -> list[asyncpg.Record]:
    return await deployment.fetch(
        """SELECT m.content, m.metadata, m.occurrence_id, s.title, s.kind, m.session_id
           FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
           WHERE m.user_id = $1 ORDER BY m.created_at, m.content""",
        user_id,
    )


async def wait_for_messages(deployment: Deployment, user_id: str, count: int, timeout_s: float = 60) -> list[Any]:
    return await wait_until(lambda: messages_of(deployment, user_id), lambda rows: len(rows) >= count, timeout_s)


async def history_of(deployment: Deployment, user_id: str) -> list[asyncpg.Record]:
    return await deployment.fetch(
        "SELECT stage, status, reason, error, trigger_id, occurrence_id, summary FROM trigger_history "
        "WHERE user_id = $1 ORDER BY recorded_at",
        user_id,
    )


async def wait_for_trigger(deployment: Deployment, user_id: str, trigger_id: str, timeout_s: float = 60) -> None:
    """Wait until the worker has applied the trigger (the read model shows it)."""
    await wait_until(
        lambda: deployment.fetch("SELECT 1 FROM triggers WHERE user_id = $1 AND trigger_id = $2", user_id, trigger_id),
        lambda rows: len(rows) == 1,
        timeout_s,
    )
