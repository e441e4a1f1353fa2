"""The webhook receiver: ``POST /api/triggers/webhook/{hook_id}``.

The response is 202 only once the call's record is in the webhooks topic. Every
rejection is a JSON body ``{"error": <code>, "message": ...}`` with one of
these statuses, and publishes nothing:

* 400 the body is not the JSON (or GitHub form) document expected, or a
  GitHub or Stripe call has no delivery id;
* 401 a missing or wrong signature, or a timestamp out of tolerance;
* 404 unknown hook; 410 disabled hook; 413 body over the limit;
* 429 over the hook's rate, 503 broker or database unreachable, both with
  ``Retry-After``.

A delivery id seen before is accepted again (202) and the worker drops it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from schemas.webhooks import HOOK_ID_PATTERN, HookDefinition, WebhookReceived
from sinks.db import TRANSIENT_ERRORS, LazyPool
from sinks.webhook_state import HookDirectory, PublishError, RateLimiter, WebhookPublisher
from streams import metrics
from streams.settings import Settings
from streams.webhook_signatures import (
    SignatureError,
    verify_github,
    verify_hmac_sha256,
    verify_standard_webhooks,
    verify_stripe,
)

logger = logging.getLogger(__name__)

ROUTE = "/api/triggers/webhook/{hook_id}"
_HOOK_ID = re.compile(HOOK_ID_PATTERN)
_DELIVERY_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
#: Headers a plain HMAC or unsigned sender may use for its delivery id.
_GENERIC_ID_HEADERS = ("webhook-id", "Idempotency-Key", "X-Request-Id")
_READ_CHUNK_BYTES = 64 * 1024
#: Seconds a sender should wait before retrying when the broker or database
#: is unreachable.
UNAVAILABLE_RETRY_AFTER_S = 5


class WebhookRejected(Exception):
    """A rejected call, with the status and the fields of its JSON error body."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class WebhookReceiver:
    """The receiver's state and its request handler."""

    def __init__(self, settings: Settings, pool: LazyPool) -> None:
        self.settings = settings
        self.hooks = HookDirectory(pool, settings.webhook_hook_cache_s)
        self.limiter = RateLimiter(settings.webhook_rate_per_s, settings.webhook_burst)
        self.publisher = WebhookPublisher(settings)

    async def handle(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        hook: HookDefinition | None = None
        try:
            hook = await self._lookup(hook_id)
            record = await self._accept(request, hook)
        except WebhookRejected as exc:
            return self._reject(hook_id, hook, exc)
        metrics.WEBHOOK_REQUESTS.labels(hook.hook_id, "accepted").inc()
        logger.info(
            "webhook accepted user_id=%s hook_id=%s delivery_id=%s", record.user_id, hook_id, record.delivery_id
        )
        return web.json_response({"status": "accepted", "delivery_id": record.delivery_id}, status=202)

    async def _lookup(self, hook_id: str) -> HookDefinition:
        hook = None
        if _HOOK_ID.match(hook_id):
            try:
                hook = await self.hooks.get(hook_id)
            except TRANSIENT_ERRORS as exc:
                logger.warning("hooks read model unreachable hook_id=%s (%s)", hook_id, exc.__class__.__name__)
                raise WebhookRejected(
                    503, "database_unavailable", "the hook store is unreachable; retry later", UNAVAILABLE_RETRY_AFTER_S
                ) from exc
        if hook is None:
            raise WebhookRejected(404, "hook_not_found", f"no webhook hook with id {hook_id!r}")
        if not hook.enabled:
            raise WebhookRejected(410, "hook_disabled", f"webhook hook {hook_id!r} is disabled")
        return hook

    async def _accept(self, request: web.Request, hook: HookDefinition) -> WebhookReceived:
        """Check one call and publish it.

        1. Take a token from the hook's bucket.
        2. Read the body, stopping at the size limit.
        3. Verify the signature over the raw bytes.
        4. Parse the payload and find the delivery id.
        5. Produce the record and wait for the broker.
        """
        # 1. Rate.
        wait_s = self.limiter.acquire(hook.hook_id)
        if wait_s is not None:
            raise WebhookRejected(429, "rate_limited", f"too many calls to hook {hook.hook_id!r}; retry later", wait_s)

        # 2. Read.
        body = await read_body(request, self.settings.webhook_max_body_bytes)

        # 3. Verify.
        try:
            verify_call(hook, body, request.headers, time.time(), self.settings.webhook_timestamp_tolerance_s)
        except SignatureError as exc:
            raise WebhookRejected(401, exc.code, exc.message) from exc

        # 4. Parse.
        payload = parse_payload(body, request.content_type)
        delivery_id = delivery_id_of(hook, body, payload, request.headers)
        record = WebhookReceived(
            user_id=hook.user_id,
            hook_id=hook.hook_id,
            delivery_id=delivery_id,
            event_type=event_type_of(hook, payload, request.headers),
            received_at=datetime.now(UTC),
            payload=payload,
        )

        # 5. Produce.
        try:
            await self.publisher.publish(record)
        except PublishError as exc:
            logger.error(
                "webhook not published user_id=%s hook_id=%s delivery_id=%s: %s; responded 503",
                hook.user_id,
                hook.hook_id,
                delivery_id,
                exc,
            )
            raise WebhookRejected(
                503, "kafka_unavailable", "the call could not be stored; retry later", UNAVAILABLE_RETRY_AFTER_S
            ) from exc
        return record

    def _reject(self, hook_id: str, hook: HookDefinition | None, exc: WebhookRejected) -> web.Response:
        # An unknown id is not a label value, so random URLs cannot grow the metric.
        label = hook.hook_id if hook is not None else "unknown"
        metrics.WEBHOOK_REQUESTS.labels(label, exc.code).inc()
        log = logger.debug if exc.status == 429 else logger.info
        log(
            "webhook rejected status=%s code=%s hook_id=%s user_id=%s",
            exc.status,
            exc.code,
            hook_id if hook is not None else "unknown",
            hook.user_id if hook is not None else None,
        )
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
        return web.json_response({"error": exc.code, "message": exc.message}, status=exc.status, headers=headers)


async def read_body(request: web.Request, limit_bytes: int) -> bytes:
    """Read the body, rejecting it with 413 as soon as it passes ``limit_bytes``.

    A declared ``Content-Length`` over the limit is rejected before reading;
    a chunked body is read only up to the first chunk past the limit.
    """
    too_large = WebhookRejected(
        413, "body_too_large", f"the body is larger than {limit_bytes} bytes; send a smaller payload"
    )
    if request.content_length is not None and request.content_length > limit_bytes:
        raise too_large
    chunks = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def verify_call(hook: HookDefinition, body: bytes, headers: Any, now_s: float, tolerance_s: float) -> None:
    """Verify the call with the hook's scheme and its secrets active at ``now_s``.

    Raises ``SignatureError``; a hook with scheme ``none`` accepts any call.
    """
    secrets = hook.active_secrets(datetime.fromtimestamp(now_s, UTC))
    if hook.scheme == "standard-webhooks":
        verify_standard_webhooks(
            body,
            headers.get("webhook-id"),
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            secrets,
            now_s,
            tolerance_s,
        )
    elif hook.scheme == "github":
        verify_github(body, headers.get("X-Hub-Signature-256"), secrets)
    elif hook.scheme == "stripe":
        verify_stripe(body, headers.get("Stripe-Signature"), secrets, now_s, tolerance_s)
    elif hook.scheme == "hmac-sha256":
        verify_hmac_sha256(body, headers.get(hook.signature_header), hook.signature_header, secrets)


def parse_payload(body: bytes, content_type: str) -> Any:
    """Decode the JSON body, or the ``payload`` field of a form-encoded one
    (how GitHub sends with content type ``application/x-www-form-urlencoded``).

    Raises ``WebhookRejected`` (400) when neither contains a JSON document.
    """
    document: bytes | str = body
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookRejected(400, "invalid_form", "the form-encoded body could not be parsed") from exc
        if len(fields.get("payload", [])) != 1:
            raise WebhookRejected(400, "invalid_form", "a form-encoded body must have one 'payload' field of JSON")
        document = fields["payload"][0]
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise WebhookRejected(
            400, "invalid_json", f"the body is not valid JSON ({exc.msg} at position {exc.pos}); send a JSON document"
        ) from exc


def delivery_id_of(hook: HookDefinition, body: bytes, payload: Any, headers: Any) -> str:
    """Return the sender's id of this delivery, the key that makes a retry a
    no-op. A plain HMAC or unsigned sender without an id header gets the
    body's SHA-256, so only a byte-identical resend is dropped.

    Raises ``WebhookRejected`` (400) when GitHub's or Stripe's id is missing
    or any id is not 1 to 200 printable ASCII characters.
    """
    if hook.scheme == "standard-webhooks":
        value = headers.get("webhook-id")
    elif hook.scheme == "github":
        value = headers.get("X-GitHub-Delivery")
    elif hook.scheme == "stripe":
        value = payload.get("id") if isinstance(payload, dict) else None
    else:
        value = next((headers[name] for name in _GENERIC_ID_HEADERS if headers.get(name)), None)
        if value is None:
            return f"sha256:{hashlib.sha256(body).hexdigest()}"
    if not isinstance(value, str) or not value:
        source = "the event's 'id' field" if hook.scheme == "stripe" else "the delivery id header"
        raise WebhookRejected(400, "missing_delivery_id", f"{source} is missing; it is needed to drop retries")
    if not _DELIVERY_ID.match(value):
        raise WebhookRejected(400, "invalid_delivery_id", "the delivery id must be 1 to 200 printable ASCII characters")
    return value


def event_type_of(hook: HookDefinition, payload: Any, headers: Any) -> str | None:
    """Return the sender's event name: GitHub's ``X-GitHub-Event``, else the
    payload's ``type`` when it is a string."""
    if hook.scheme == "github":
        value = headers.get("X-GitHub-Event")
    else:
        value = payload.get("type") if isinstance(payload, dict) else None
    return value[:200] if isinstance(value, str) else None


WEBHOOK_RECEIVER_KEY = web.AppKey("webhook_receiver", WebhookReceiver)


def add_webhook_routes(app: web.Application, settings: Settings, pool: LazyPool) -> None:
    """Add the receiver's route, and start and stop its producer with ``app``."""
    receiver = WebhookReceiver(settings, pool)
    app[WEBHOOK_RECEIVER_KEY] = receiver
    app.router.add_post(ROUTE, receiver.handle)

    async def start_publisher(app: web.Application) -> None:
        await receiver.publisher.start()

    async def stop_publisher(app: web.Application) -> None:
        await receiver.publisher.stop()

    app.on_startup.append(start_publisher)
    app.on_cleanup.append(stop_publisher)
