"""Exit a worker whose consumer has stopped making progress.

XXX: faust-streaming 0.15.3 now and then stops delivering records after a
worker restarts from a crash: the consumer keeps fetching, but the agents get
nothing and the committed offsets stop moving while records wait (compare
faust-streaming/faust issues 175 and 640, consumers that stop). A restart
clears it. So this timer compares the group's committed offsets with the end
of each assigned source partition; when some partition has records waiting
and no committed offset moved for ``stall_timeout_s``, it logs an error and
exits with status 75, for the process supervisor (systemd, Kubernetes) to
start the worker again. Nothing is lost: offsets move only after outputs are
in Kafka, and every sink is idempotent.
"""

from __future__ import annotations

import logging
import os
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from streams.app import app, settings

logger = logging.getLogger(__name__)

#: Exit status of a worker that stopped itself because it stalled.
EXIT_STALLED = 75


class ProgressWatch:
    """Tracks committed offsets against the end of each source partition."""

    def __init__(self, stall_timeout_s: float) -> None:
        self.stall_timeout_s = stall_timeout_s
        self._last_committed: dict[TopicPartition, int] | None = None
        self._last_progress: float | None = None

    def observe(self, committed: dict[TopicPartition, int], ends: dict[TopicPartition, int], now: float) -> bool:
        """Record one observation; return True when records have waited with
        no committed offset moving for ``stall_timeout_s`` since the last
        progress. A partition with nothing waiting never counts as stalled,
        so an idle worker is fine."""
        waiting = any(committed.get(tp, 0) < end for tp, end in ends.items())
        moved = self._last_committed is None or committed != self._last_committed
        self._last_committed = dict(committed)
        if self._last_progress is None or moved or not waiting:
            self._last_progress = now
            return False
        return now - self._last_progress >= self.stall_timeout_s

    def reset(self) -> None:
        self._last_progress = None


watch = ProgressWatch(settings.stall_timeout_s)
_clients: dict[str, object] = {}


async def _offsets(tps: list[TopicPartition]) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    admin = _clients.get("admin")
    probe = _clients.get("probe")
    if not isinstance(admin, AIOKafkaAdminClient) or not isinstance(probe, AIOKafkaConsumer):
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        await probe.start()
        _clients.update(admin=admin, probe=probe)
    group = await admin.list_consumer_group_offsets(settings.app_id)
    committed = {tp: group[tp].offset for tp in tps if tp in group and group[tp].offset >= 0}
    ends = await probe.end_offsets(tps)
    return committed, dict(ends)


@app.timer(interval=settings.stall_check_interval_s)  # type: ignore[untyped-decorator]
async def check_progress() -> None:
    """Exit with ``EXIT_STALLED`` when the consumer has stalled for too long."""
    if not settings.stall_timeout_s:
        return
    # A rebalance or a table recovery that never ends is a stall as well, so
    # the clock keeps running through them. The timeout must therefore exceed
    # the longest recovery expected.
    tps = [
        TopicPartition(tp.topic, tp.partition)
        for tp in app.consumer.assignment()
        if not tp.topic.endswith("-changelog") and "__assignor" not in tp.topic
    ]
    if not tps:
        return
    try:
        committed, ends = await _offsets(tps)
    except Exception as exc:  # noqa: BLE001 - a failed probe is not a stall
        logger.warning("progress check failed (%s); will try again", exc.__class__.__name__)
        return
    if watch.observe(committed, ends, time.monotonic()):
        waiting = sorted(f"{tp.topic}[{tp.partition}]" for tp in tps if committed.get(tp, 0) < ends.get(tp, 0))
        logger.error(
            "no progress for %.0fs while records wait on %s (rebalancing=%s, in_recovery=%s);"
            " exiting with status %d for the supervisor to restart",
            settings.stall_timeout_s,
            ", ".join(waiting),
            app.rebalancing,
            getattr(app, "in_recovery", None),
            EXIT_STALLED,
        )
        logging.shutdown()
        os._exit(EXIT_STALLED)
