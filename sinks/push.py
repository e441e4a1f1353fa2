"""The push sink: send each delivery that lists ``push`` to every device of the user."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import faust

from schemas.exceptions import InvalidRecordError, PushSendError
from schemas.live import preview_of
from schemas.push import PushSubscription, SubscriptionCommand, encode_push_payload
from schemas.records import Delivery, Outcome, OutcomeStatus
from schemas.serialization import parse
from sinks.store import pool
from sinks.webpush import URGENCY_BY_PRIORITY, WebPushSender, topic_for
from streams import metrics
from streams.app import app, commands_topic, pushes_topic, settings, user_subscriptions
from streams.publishing import record_outcome, send_record, utc_now

logger = logging.getLogger(__name__)

#: Backoff between attempts when the push service sends no ``Retry-After``, in seconds.
RETRY_DELAYS_S = (1.0, 2.0, 5.0, 15.0, 30.0)
#: Characters of the message kept in the preview before the byte limit applies.
PUSH_PREVIEW_MAX_CHARS = 4000


@app.agent(pushes_topic)
async def send_pushes(stream: faust.StreamT[bytes]) -> None:
    """Push every delivery that the chat sink stored and that lists ``push``.

    1. Decode the delivery; the chat sink produced it, so an invalid one is
       only skipped.
    2. Look up the user's subscriptions in the table.
    3. Send to all of them at once; each device retries on its own, so one
       slow push service holds up only its own sends.

    The stream moves on only when every device is done, so a crash before
    then redelivers the delivery, and ``push_sends`` keeps a device that
    already has the message from getting it twice.
    """
    private_key = settings.vapid_private_key
    if private_key is None:
        logger.warning("LUNA_VAPID_PRIVATE_KEY is not set; pushes will be recorded as failed")
        async for event in stream.events():
            delivery = _decode(event)
            if delivery is not None and "push" in delivery.channels:
                await _record(delivery, "-", 0, "failed", "vapid_not_configured", {})
        return

    sender = WebPushSender(
        private_key.get_secret_value(),
        settings.vapid_subject,
        timeout_s=settings.push_timeout_s,
        allowed_hosts=settings.push_allowed_test_hosts,
    )
    async with sender:
        async for event in stream.events():
            # 1. Decode.
            delivery = _decode(event)
            if delivery is None or "push" not in delivery.channels:
                continue

            # 2. Look up.
            subscriptions = [PushSubscription.model_validate(_public(entry)) for entry in _entries(delivery)]
            if not subscriptions:
                await _record(delivery, "-", 0, "skipped", "no_subscriptions", {})
                continue

            # 3. Send.
            payload = build_payload(delivery)
            await asyncio.gather(*(_deliver(sender, delivery, subscription, payload) for subscription in subscriptions))


def _decode(event: faust.EventT[bytes]) -> Delivery | None:
    try:
        return parse(Delivery, event.value, "invalid_delivery")
    except InvalidRecordError:
        return None


def _entries(delivery: Delivery) -> list[dict[str, Any]]:
    return sorted(user_subscriptions(delivery.user_id).values(), key=lambda entry: str(entry["subscription_id"]))


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("endpoint", "keys", "user_agent") if key in entry}


def build_payload(delivery: Delivery) -> bytes:
    """Return the JSON the service worker receives, within ``push_payload_max_bytes``."""
    fields = {
        "type": "new_message",
        "occurrence_id": delivery.occurrence_id,
        "trigger_id": delivery.trigger_id,
        "session_id": delivery.session_id,
        "priority": delivery.priority,
    }
    preview = preview_of(delivery.text, PUSH_PREVIEW_MAX_CHARS)
    return encode_push_payload(fields, preview, settings.push_payload_max_bytes)


async def _deliver(sender: WebPushSender, delivery: Delivery, subscription: PushSubscription, payload: bytes) -> None:
    """Send to one device until it accepts, is gone, or attempts run out.

    Every attempt records an outcome. 404 and 410 unsubscribe the device
    through the commands topic; 429 and 5xx wait ``Retry-After`` (or the
    backoff) and try again.
    """
    subscription_id = subscription.subscription_id
    database = await pool.get()
    if await database.fetchval(
        "SELECT 1 FROM push_sends WHERE occurrence_id = $1 AND subscription_id = $2",
        delivery.occurrence_id,
        subscription_id,
    ):
        metrics.DELIVERIES.labels("push", "duplicate").inc()
        logger.debug("push already sent occurrence_id=%s subscription_id=%s", delivery.occurrence_id, subscription_id)
        return

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(subscription.endpoint))
    summary: dict[str, Any] = {"subscription_id": subscription_id, "push_origin": origin, "bytes": len(payload)}
    attempt = 0
    while True:
        attempt += 1
        try:
            status = await sender.send(
                subscription,
                payload,
                ttl_s=settings.push_ttl_s,
                urgency=URGENCY_BY_PRIORITY[delivery.priority],
                topic=topic_for(delivery.occurrence_id),
            )
        except PushSendError as exc:
            details = {**summary, "http_status": exc.http_status}
            if not exc.retriable or attempt >= settings.push_max_attempts:
                await _record(delivery, subscription_id, attempt, "failed", exc.code, details, exc.message)
                metrics.DELIVERIES.labels("push", exc.code).inc()
                if exc.code == "subscription_gone":
                    await _unsubscribe(delivery.user_id, subscription_id)
                    await _mark_done(delivery, subscription_id, "gone", exc.http_status, attempt)
                return
            delay = exc.retry_after_s if exc.retry_after_s is not None else _backoff(attempt)
            if delay > settings.push_retry_max_delay_s:
                reason = f"retry_after_over_{settings.push_retry_max_delay_s:g}s"
                await _record(delivery, subscription_id, attempt, "failed", reason, details, exc.message)
                return
            await _record(delivery, subscription_id, attempt, "retrying", exc.code, {**details, "delay_s": delay})
            metrics.SINK_RETRIES.labels("push").inc()
            logger.warning(
                "push failed user_id=%s occurrence_id=%s subscription_id=%s attempt=%s (%s); will retry in %.1fs",
                delivery.user_id,
                delivery.occurrence_id,
                subscription_id,
                attempt,
                exc.message,
                delay,
            )
            await asyncio.sleep(delay)
            continue

        await _mark_done(delivery, subscription_id, "sent", status, attempt)
        await _record(delivery, subscription_id, attempt, "delivered", "accepted", {**summary, "http_status": status})
        metrics.DELIVERIES.labels("push", "delivered").inc()
        return


def _backoff(attempt: int) -> float:
    return RETRY_DELAYS_S[min(attempt - 1, len(RETRY_DELAYS_S) - 1)]


async def _mark_done(
    delivery: Delivery, subscription_id: str, status: str, http_status: int | None, attempts: int
) -> None:
    database = await pool.get()
    await database.execute(
        """
        INSERT INTO push_sends (occurrence_id, subscription_id, user_id, status, http_status, attempts)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
        """,
        delivery.occurrence_id,
        subscription_id,
        delivery.user_id,
        status,
        http_status,
        attempts,
    )


async def _unsubscribe(user_id: str, subscription_id: str) -> None:
    """Publish the removal of a gone subscription; the commands agent applies it."""
    command = SubscriptionCommand(
        command_id=f"gone:{subscription_id}:{utc_now().isoformat()}",
        user_id=user_id,
        issued_at=utc_now(),
        action="unsubscribe",
        subscription_id=subscription_id,
        reason="gone",
    )
    await send_record(commands_topic, user_id, command)
    logger.info("push subscription gone, unsubscribing user_id=%s subscription_id=%s", user_id, subscription_id)


async def _record(
    delivery: Delivery,
    subscription_id: str,
    attempt: int,
    status: OutcomeStatus,
    reason: str,
    summary: dict[str, Any],
    error: str | None = None,
) -> None:
    await record_outcome(
        Outcome(
            outcome_id=f"{delivery.occurrence_id}:push:{subscription_id}:{attempt}",
            user_id=delivery.user_id,
            stage="push",
            status=status,
            occurrence_id=delivery.occurrence_id,
            trigger_id=delivery.trigger_id,
            source=delivery.source,
            reason=reason,
            error=error,
            summary={**summary, "attempt": attempt},
            occurred_at=delivery.occurred_at,
            recorded_at=utc_now(),
        )
    )
