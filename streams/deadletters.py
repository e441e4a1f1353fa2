"""Read the dead-letter topic, for operators."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.settings import Settings
from streams.topics import TopicNames


async def read_dead_letters(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """Return up to ``limit`` dead letters, oldest first, without joining a group."""
    topic = TopicNames(settings.topic_prefix).dead_letters
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        # Every topic has the configured partition count.
        assigned = [TopicPartition(topic, partition) for partition in range(settings.partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        letters: list[dict[str, Any]] = []
        while len(letters) < limit and [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                letters.extend(orjson.loads(record.value) for record in records if record.value is not None)
        return letters[:limit]
    finally:
        await consumer.stop()
