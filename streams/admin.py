"""Create the topics of one deployment."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings
from streams.topics import TopicNames

logger = logging.getLogger(__name__)


async def create_topics(settings: Settings) -> list[str]:
    """Create every topic that does not exist yet; return the names created."""
    names = TopicNames(settings.topic_prefix).all()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            topics = [
                NewTopic(
                    name=name,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                )
                for name in missing
            ]
            try:
                await admin.create_topics(topics)
            except TopicAlreadyExistsError:
                logger.info("some topics were created concurrently; continuing")
        logger.info("topics ready: %d created, %d existed", len(missing), len(names) - len(missing))
        return missing
    finally:
        await admin.close()
