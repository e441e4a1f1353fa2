"""The SSE endpoint ``GET /api/triggers/live``: one user's live events as
``text/event-stream``."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from schemas.exceptions import AuthenticationError
from sinks.live import CLOSE, LiveFrame, LiveHub, Resync
from sinks.web_base import SETTINGS_KEY, auth_error_response, authenticate

logger = logging.getLogger(__name__)

HUB_KEY = web.AppKey("live_hub", LiveHub)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: Characters that would end a field early or that the SSE parser rejects in an id.
_FIELD_UNSAFE = re.compile(r"[\r\n\0]")


def format_event(data: str, event: str | None = None, event_id: str | None = None) -> bytes:
    """Encode one SSE event.

    CR, LF and NUL are removed from ``event`` and ``event_id``, so a value can
    never start a field of its own; each line of ``data`` becomes one
    ``data:`` line.
    """
    lines = []
    if event_id is not None:
        lines.append(f"id: {_FIELD_UNSAFE.sub('', event_id)}")
    if event is not None:
        lines.append(f"event: {_FIELD_UNSAFE.sub('', event)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def format_frame(item: LiveFrame | Resync) -> bytes:
    if isinstance(item, Resync):
        return format_event("{}", event="resync", event_id=item.event_id)
    return format_event(item.data.decode("utf-8"), event=item.event, event_id=item.event_id)


async def stream_live(request: web.Request) -> web.StreamResponse:
    """Stream the user's live events until the client disconnects.

    1. Authenticate; a missing, forged or expired token is a 401 JSON error.
    2. Subscribe, replaying what followed ``Last-Event-ID`` (header, or the
       ``last_event_id`` query parameter for a first ``EventSource`` request).
    3. Send ``retry:``, then each event, and a comment line after every
       ``live_heartbeat_s`` of silence.
    4. Unsubscribe at once when the client goes away (the handler is
       cancelled) or the gateway shuts down.
    """
    # 1. Authenticate.
    try:
        user_id = authenticate(request)
    except (AuthenticationError, LookupError) as exc:
        return auth_error_response(exc)
    settings = request.app[SETTINGS_KEY]
    hub = request.app[HUB_KEY]

    # 2. Subscribe.
    last_event_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    subscription = hub.subscribe(user_id, last_event_id)
    logger.info("SSE connected user_id=%s last_event_id=%s", user_id, last_event_id)
    # 3. Stream. No compression: a compressing encoder buffers the stream.
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    try:
        await response.prepare(request)
        await response.write(f"retry: {settings.live_retry_ms}\n\n".encode())
        while True:
            try:
                item = await asyncio.wait_for(subscription.get(), timeout=settings.live_heartbeat_s)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if item is CLOSE:
                break
            assert isinstance(item, LiveFrame | Resync)
            await response.write(format_frame(item))
        return response
    except ConnectionResetError:
        logger.info("SSE client went away user_id=%s", user_id)
        return response
    except asyncio.CancelledError:
        logger.info("SSE disconnected user_id=%s", user_id)
        raise
    finally:
        # 4. Free the subscription.
        hub.unsubscribe(subscription)
