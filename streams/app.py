"""The Faust app of the worker, with its topics and tables.

Every topic carries raw bytes, and agents decode and validate records
themselves. A record that cannot be decoded then reaches the dead-letter
topic instead of stopping the partition inside faust's deserialiser.

Tables:

* ``triggers``: ``user_id`` -> ``{trigger_id: {"definition": ..., "saved_at": ...}}``,
  written by the commands agent.
* ``schedule_state``: ``user_id`` -> ``{trigger_id: last scheduled instant}``,
  written by the ticks agent; the ticker resumes from it after a restart.
* ``pattern_state``: ``user_id`` -> the user's watermark, last-seen time and
  the event-time windows of each pattern trigger, written by the pattern
  agent (see ``processors/detectors.py``).
* ``push_subscriptions``: ``user_id`` -> ``{subscription_id: subscription}``,
  written by the commands agent, read by the push sink.
* ``hooks``: ``user_id`` -> ``{hook_id: hook definition}``, written by the
  commands agent.
* ``webhook_deliveries``: ``user_id`` -> ``{"<hook_id>:<delivery_id>": expiry
  in Unix seconds}``, the delivery ids the webhooks agent has handled.

A table value is always replaced whole (``table[key] = new``), because
faust writes only assignments to the changelog.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT

from streams.settings import get_settings
from streams.topics import TopicNames

settings = get_settings()
topic_names = TopicNames(settings.topic_prefix)

app = faust.App(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap.replace(',', ';kafka://')}",
    store="memory://",
    autodiscover=["processors", "sinks"],
    origin="streams",
    datadir=str(settings.worker_data_dir / settings.app_id),
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=settings.commit_interval_s,
    broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=1.0,
    producer_acks=-1,
    producer_linger=0.001,
    web_enabled=False,
    # Table keys and values go through these; topics set their own.
    key_serializer="json",
    value_serializer="json",
)


def _topic(name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
        replicas=settings.replication_factor,
    )


activity_topic = _topic(topic_names.activity)
commands_topic = _topic(topic_names.commands)
webhooks_topic = _topic(topic_names.webhooks)
ticks_topic = _topic(topic_names.ticks)
occurrences_topic = _topic(topic_names.occurrences)
deliveries_topic = _topic(topic_names.deliveries)
outcomes_topic = _topic(topic_names.outcomes)
live_topic = _topic(topic_names.live)
pushes_topic = _topic(topic_names.pushes)
dead_letters_topic = _topic(topic_names.dead_letters)

triggers_table: TableT[str, dict[str, Any]] = app.Table(
    "triggers",
    partitions=settings.partitions,
)
schedule_state_table: TableT[str, dict[str, str]] = app.Table(
    "schedule_state",
    partitions=settings.partitions,
)
hooks_table: TableT[str, dict[str, Any]] = app.Table(
    "hooks",
    partitions=settings.partitions,
)
webhook_deliveries_table: TableT[str, dict[str, float]] = app.Table(
    "webhook_deliveries",
    partitions=settings.partitions,
)

pattern_state_table: TableT[str, dict[str, Any]] = app.Table(
    "pattern_state",
    partitions=settings.partitions,
)
push_subscriptions_table: TableT[str, dict[str, Any]] = app.Table(
    "push_subscriptions",
    partitions=settings.partitions,
)


def user_triggers(user_id: str) -> dict[str, Any]:
    """Return the stored entries of one user's triggers (empty when none)."""
    value = triggers_table.get(user_id)
    return value if isinstance(value, dict) else {}


def user_subscriptions(user_id: str) -> dict[str, Any]:
    """Return one user's push subscriptions by subscription id (empty when none)."""
    value = push_subscriptions_table.get(user_id)
    return value if isinstance(value, dict) else {}


def user_hooks(user_id: str) -> dict[str, Any]:
    """Return the stored definitions of one user's hooks (empty when none)."""
    value = hooks_table.get(user_id)
    return value if isinstance(value, dict) else {}
