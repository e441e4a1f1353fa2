"""An async producer for services that emit domain events and commands.

Use it as an async context manager::

    async with EventProducer.from_settings(get_settings()) as producer:
        await producer.emit(make_event(...))

Each call returns once the broker has acknowledged the record (idempotent
producer, ``acks=all``), so when a call raises no exception the record is
durably in Kafka.
"""

from __future__ import annotations

from types import TracebackType

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from schemas.events import EventEnvelope, parse_event
from schemas.serialization import dumps
from schemas.triggers import TriggerCommand
from streams.settings import Settings
from streams.topics import TopicNames


class EventProducer:
    """Produces envelopes to the activity topic and commands to the commands topic."""

    def __init__(self, bootstrap: str, topic_prefix: str, *, request_timeout_ms: int = 30_000) -> None:
        self.topics = TopicNames(topic_prefix)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=request_timeout_ms,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> EventProducer:
        return cls(settings.kafka_bootstrap, settings.topic_prefix)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def emit(self, envelope: EventEnvelope) -> None:
        """Validate and produce one domain event.

        Raises ``InvalidRecordError`` before producing anything when the
        envelope or its data is invalid.
        """
        parse_event(envelope.model_dump(mode="json", by_alias=True))
        await self.send(self.topics.activity, envelope.user_id, envelope)

    async def command(self, command: TriggerCommand) -> None:
        await self.send(self.topics.commands, command.user_id, command)

    async def send(self, topic: str, user_id: str, record: BaseModel) -> None:
        await self._producer.send_and_wait(topic, key=user_id.encode(), value=dumps(record))

    async def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Produce bytes as they are; for tools and tests that need bad input."""
        await self._producer.send_and_wait(topic, key=key, value=value)
