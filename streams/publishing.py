"""Produce records from agents and timers, and dead-letter bad input.

Inside an agent, a send returns once the record is queued in the producer.
faust flushes the producer before it commits the agent's offsets, so an
offset moves only after its outputs are in Kafka. A crash before that
replays the input. Outside an agent (the ticker, the absence detector) a
send waits for the broker's acknowledgement, since nothing commits after it.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime

import faust
from faust.streams import current_event
from pydantic import BaseModel

from schemas.exceptions import InvalidRecordError
from schemas.records import DeadLetter, Outcome
from schemas.serialization import dumps
from streams import metrics
from streams.app import dead_letters_topic, outcomes_topic

logger = logging.getLogger(__name__)


async def send_record(topic: faust.TopicT, user_id: str, record: BaseModel) -> None:
    """Produce ``record`` keyed by ``user_id``; see the module docstring for
    when this waits for the broker."""
    pending = await topic.send(key=user_id.encode(), value=dumps(record))
    if current_event() is None:
        await pending


async def record_outcome(outcome: Outcome) -> None:
    await send_record(outcomes_topic, outcome.user_id, outcome)


async def dead_letter(event: faust.EventT[bytes], error: InvalidRecordError, stage: str) -> None:
    """Send the record behind ``event`` to the dead-letter topic with its coordinates."""
    message = event.message
    raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
    try:
        value, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    key = message.key.decode("utf-8", "replace") if isinstance(message.key, bytes) else None
    letter = DeadLetter(
        error_code=error.code,
        error=error.message,
        stage=stage,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key,
        value=value,
        value_encoding=encoding,  # type: ignore[arg-type]
        failed_at=datetime.now(UTC),
    )
    logger.warning(
        "dead-lettered record topic=%s partition=%s offset=%s user_id=%s code=%s: %s",
        message.topic,
        message.partition,
        message.offset,
        key,
        error.code,
        error.message,
    )
    metrics.DEAD_LETTERS.labels(stage, error.code).inc()
    await dead_letters_topic.send(key=message.key, value=dumps(letter))


def utc_now() -> datetime:
    return datetime.now(UTC)
