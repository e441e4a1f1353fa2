"""Turn verified webhook calls into occurrences, once per delivery id."""

from __future__ import annotations

import logging
from typing import Any

import faust

from processors.occurrences import emit_occurrence, record_render_failure
from processors.rendering import render_template, summarise
from schemas.exceptions import InvalidRecordError, TemplateError
from schemas.records import Outcome
from schemas.serialization import parse
from schemas.webhooks import HookDefinition, WebhookReceived
from streams import metrics
from streams.app import app, settings, user_hooks, webhook_deliveries_table, webhooks_topic
from streams.publishing import dead_letter, record_outcome, utc_now

logger = logging.getLogger(__name__)

#: Delivery ids remembered per user at most; past it the ones that expire
#: first are forgotten early.
# TODO(a user receives more than this within the retention): move the ids to a
# table keyed by delivery, so a write no longer rewrites the user's whole set.
MAX_REMEMBERED_DELIVERIES = 10_000


@app.agent(webhooks_topic)
async def handle_webhooks(stream: faust.StreamT[bytes]) -> None:
    """Render each webhook call with its hook's template.

    1. Decode the record; a bad one is dead-lettered.
    2. Skip a delivery id already handled within the retention, and calls
       to a hook deleted or disabled since the gateway accepted them.
    3. Render the message and produce the occurrence, whose id is
       deterministic, so the chat store drops a copy that slips through.
    4. Remember the delivery id. This comes after producing: a crash in
       between replays the record, and step 3's id makes that harmless,
       whereas the other order could lose the message.
    """
    async for event in stream.events():
        # 1. Decode.
        try:
            call = parse(WebhookReceived, event.value, "invalid_webhook")
        except InvalidRecordError as exc:
            await dead_letter(event, exc, stage="webhooks")
            continue

        # 2. Skip.
        key = f"{call.hook_id}:{call.delivery_id}"
        now_s = utc_now().timestamp()
        remembered = webhook_deliveries_table.get(call.user_id) or {}
        seen = {known: expires for known, expires in remembered.items() if expires > now_s}
        if key in seen:
            metrics.WEBHOOK_DUPLICATES.inc()
            logger.info(
                "duplicate webhook delivery skipped partition=%s offset=%s user_id=%s hook_id=%s delivery_id=%s",
                event.message.partition,
                event.message.offset,
                call.user_id,
                call.hook_id,
                call.delivery_id,
            )
            continue
        entry = user_hooks(call.user_id).get(call.hook_id)
        hook = HookDefinition.model_validate(entry) if entry is not None else None
        if hook is None or not hook.enabled:
            await _record_skip(call, "hook_deleted" if hook is None else "hook_disabled")
            continue

        # 3. Render and produce.
        await _emit_for_call(hook, call)

        # 4. Remember.
        seen[key] = now_s + settings.webhook_dedupe_retention_s
        if len(seen) > MAX_REMEMBERED_DELIVERIES:
            seen = dict(sorted(seen.items(), key=lambda item: item[1])[-MAX_REMEMBERED_DELIVERIES:])
        webhook_deliveries_table[call.user_id] = seen


def occurrence_id_of(call: WebhookReceived) -> str:
    return f"webhook:{call.user_id}:{call.hook_id}:{call.delivery_id}"


def webhook_fields(hook: HookDefinition, call: WebhookReceived) -> dict[str, Any]:
    """Fields a hook's template can use: the payload's top-level keys (a payload
    that is not an object is ``payload``), then ``hook_name``, ``event_type``,
    ``delivery_id`` and ``received_at``."""
    fields = dict(call.payload) if isinstance(call.payload, dict) else {"payload": call.payload}
    fields.setdefault("hook_name", hook.name)
    fields.setdefault("event_type", call.event_type)
    fields.setdefault("delivery_id", call.delivery_id)
    fields.setdefault("received_at", call.received_at.isoformat())
    return fields


async def _emit_for_call(hook: HookDefinition, call: WebhookReceived) -> None:
    occurrence_id = occurrence_id_of(call)
    payload = call.payload if isinstance(call.payload, dict) else {}
    summary = {"hook_name": hook.name, "delivery_id": call.delivery_id, "event_type": call.event_type}
    summary.update(summarise(payload))
    try:
        text = render_template(hook.template, webhook_fields(hook, call))
    except TemplateError as exc:
        await record_render_failure(hook, occurrence_id, "webhook", call.received_at, summary, exc)
        return
    await emit_occurrence(
        hook,
        occurrence_id=occurrence_id,
        source="webhook",
        source_ref=call.delivery_id,
        occurred_at=call.received_at,
        text=text,
        summary=summary,
    )


async def _record_skip(call: WebhookReceived, reason: str) -> None:
    logger.info("webhook skipped user_id=%s hook_id=%s reason=%s", call.user_id, call.hook_id, reason)
    occurrence_id = occurrence_id_of(call)
    await record_outcome(
        Outcome(
            outcome_id=f"{occurrence_id}:skipped",
            user_id=call.user_id,
            stage="webhooks",
            status="skipped",
            occurrence_id=occurrence_id,
            trigger_id=call.hook_id,
            source="webhook",
            reason=reason,
            summary={"delivery_id": call.delivery_id, "event_type": call.event_type},
            occurred_at=call.received_at,
            recorded_at=utc_now(),
        )
    )
