"""The user endpoints of the gateway: the unread badge and push subscriptions.

Every endpoint authenticates with the same token as the SSE stream and acts
on the token's user only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from schemas.exceptions import AuthenticationError, InvalidSubscriptionError
from schemas.live import LiveEvent
from schemas.push import PushSubscription, SubscriptionCommand, subscription_id_of, validate_subscription
from schemas.serialization import describe_validation_error
from sinks.web_base import POOL_KEY, PRODUCER_KEY, SETTINGS_KEY, auth_error_response, authenticate, error_response

logger = logging.getLogger(__name__)

#: Largest accepted request body of these endpoints, in bytes.
BODY_MAX_BYTES = 64 * 1024
#: Most message ids one ``messages/read`` request may name.
READ_IDS_MAX = 1000

Handler = Callable[[web.Request, str], Awaitable[web.Response]]


def authenticated(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap ``handler(request, user_id)`` so that a request without a valid token gets a 401."""

    async def wrapper(request: web.Request) -> web.Response:
        try:
            user_id = authenticate(request)
        except (AuthenticationError, LookupError) as exc:
            return auth_error_response(exc)
        return await handler(request, user_id)

    return wrapper


@authenticated
async def pending_count(request: web.Request, user_id: str) -> web.Response:
    """Return ``{"unread": n}``: the user's proactive messages not yet read."""
    pool = await request.app[POOL_KEY].get()
    return web.json_response({"unread": await _unread_count(pool, user_id)})


async def _unread_count(pool: Any, user_id: str) -> int:
    count = await pool.fetchval(
        "SELECT count(*) FROM chat_messages WHERE user_id = $1 AND read_at IS NULL AND occurrence_id IS NOT NULL",
        user_id,
    )
    return int(count)


@authenticated
async def mark_read(request: web.Request, user_id: str) -> web.Response:
    """Mark messages read and announce the new unread count.

    The body is ``{"message_ids": [...]}`` or ``{"all": true}``. Ids of other
    users' messages are ignored. Returns ``{"marked": n, "unread": m}`` once
    the ``unread_count`` event is in the live topic.
    """
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    mark_all = body.get("all") is True
    ids = body.get("message_ids")
    if not mark_all and (not isinstance(ids, list) or not all(isinstance(item, str) for item in ids)):
        return error_response(400, "invalid_body", 'send {"message_ids": ["<uuid>", ...]} or {"all": true}')
    if not mark_all:
        assert isinstance(ids, list)
        if len(ids) > READ_IDS_MAX:
            return error_response(400, "invalid_body", f"at most {READ_IDS_MAX} message ids per request")
        try:
            message_ids = [uuid.UUID(item) for item in ids]
        except ValueError:
            return error_response(400, "invalid_message_id", "every message id must be a UUID")

    pool = await request.app[POOL_KEY].get()
    async with pool.acquire() as connection, connection.transaction():
        if mark_all:
            status = await connection.execute(
                "UPDATE chat_messages SET read_at = now() "
                "WHERE user_id = $1 AND read_at IS NULL AND occurrence_id IS NOT NULL",
                user_id,
            )
        else:
            status = await connection.execute(
                "UPDATE chat_messages SET read_at = now() "
                "WHERE user_id = $1 AND read_at IS NULL AND occurrence_id IS NOT NULL AND id = ANY($2::uuid[])",
                user_id,
                message_ids,
            )
        unread = await _unread_count(connection, user_id)
    marked = int(status.split()[-1])

    event = LiveEvent(user_id=user_id, type="unread_count", data={"unread": unread}, produced_at=datetime.now(UTC))
    producer = request.app[PRODUCER_KEY].get()
    await producer.send(producer.topics.live, user_id, event)
    logger.info("messages marked read user_id=%s marked=%s unread=%s", user_id, marked, unread)
    return web.json_response({"marked": marked, "unread": unread})


@authenticated
async def subscribe_push(request: web.Request, user_id: str) -> web.Response:
    """Validate a browser's push subscription and publish it to the commands topic.

    Returns 201 ``{"subscription_id": ...}`` once the command is durably in
    Kafka; the worker applies it within moments. An invalid subscription is a
    400 whose ``error`` names the field (``invalid_endpoint``,
    ``endpoint_not_allowed``, ``invalid_p256dh``, ``invalid_auth``).
    """
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    body.setdefault("user_agent", (request.headers.get("User-Agent") or "")[:512] or None)
    try:
        subscription = PushSubscription.model_validate(body)
        validate_subscription(subscription, request.app[SETTINGS_KEY].push_allowed_test_hosts)
    except ValidationError as exc:
        return error_response(400, "invalid_subscription", describe_validation_error(exc))
    except InvalidSubscriptionError as exc:
        return error_response(400, exc.code, exc.message)

    command = SubscriptionCommand(
        command_id=str(uuid.uuid4()),
        user_id=user_id,
        issued_at=datetime.now(UTC),
        action="subscribe",
        subscription_id=subscription.subscription_id,
        subscription=subscription,
        reason="user",
    )
    producer = request.app[PRODUCER_KEY].get()
    await producer.send(producer.topics.commands, user_id, command)
    logger.info("push subscription saved user_id=%s subscription_id=%s", user_id, subscription.subscription_id)
    return web.json_response({"subscription_id": subscription.subscription_id}, status=201)


@authenticated
async def unsubscribe_push(request: web.Request, user_id: str) -> web.Response:
    """Publish the removal of the subscription at ``{"endpoint": ...}``; returns 202."""
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return error_response(400, "invalid_body", 'send {"endpoint": "<the subscription endpoint>"}')
    command = SubscriptionCommand(
        command_id=str(uuid.uuid4()),
        user_id=user_id,
        issued_at=datetime.now(UTC),
        action="unsubscribe",
        subscription_id=subscription_id_of(endpoint),
        reason="user",
    )
    producer = request.app[PRODUCER_KEY].get()
    await producer.send(producer.topics.commands, user_id, command)
    return web.json_response({"subscription_id": command.subscription_id}, status=202)


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    """Return the request's JSON object, or the 400 or 413 response to send instead."""
    if request.content_length is not None and request.content_length > BODY_MAX_BYTES:
        return error_response(413, "body_too_large", f"the body must be at most {BODY_MAX_BYTES} bytes")
    raw = await request.content.read(BODY_MAX_BYTES + 1)
    if len(raw) > BODY_MAX_BYTES:
        return error_response(413, "body_too_large", f"the body must be at most {BODY_MAX_BYTES} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_response(400, "malformed_json", "the body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "invalid_body", "the body must be a JSON object")
    return body
