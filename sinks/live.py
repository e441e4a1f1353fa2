"""Fan-out of the live topic to the SSE connections of one gateway.

Every gateway instance reads every partition of the live topic itself (no
consumer group), so a tab connected to any instance receives every event of its
user. Event ids are ``<partition>-<offset>`` of the live record: all
instances read the same log, so a tab that reconnects to another instance
resumes from the same id. A user's records share one partition, so the
offsets of one user's events increase.

Memory is bounded: at most ``replay_max`` events per user for replay, at
most ``users_max`` users, and at most ``queue_max`` queued events per
connection. A connection that falls further behind is sent one ``resync``
(reload from the chat store) in place of the events it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import Counter, Gauge

from schemas.exceptions import InvalidRecordError
from schemas.live import LiveEvent
from schemas.serialization import parse
from streams.settings import Settings
from streams.topics import TopicNames

logger = logging.getLogger(__name__)

CONNECTIONS = Gauge("luna_live_connections", "Open SSE connections of this gateway.")
LIVE_EVENTS = Counter("luna_live_events_total", "Live records read, by what the gateway did.", ["result"])
RESYNCS = Counter("luna_live_resyncs_total", "resync events sent, by cause.", ["cause"])


@dataclass(frozen=True)
class LiveFrame:
    """One live event ready for the wire."""

    partition: int
    offset: int
    event: str
    data: bytes
    dedupe_key: str | None = None

    @property
    def event_id(self) -> str:
        return f"{self.partition}-{self.offset}"


@dataclass(frozen=True)
class Resync:
    """Tells the client it missed events; ``event_id`` moves its ``Last-Event-ID`` past them."""

    event_id: str | None
    cause: str


#: Sent to every connection when the gateway shuts down.
CLOSE = object()

QueueItem = LiveFrame | Resync | object


class Subscription:
    """The queue of one SSE connection."""

    def __init__(self, user_id: str, queue_max: int) -> None:
        self.user_id = user_id
        self._queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=queue_max)
        #: Live frames at or before this offset were already replayed or were
        #: seen by the client on another gateway, so they are skipped.
        self.skip_through: tuple[int, int] | None = None

    def offer(self, item: QueueItem) -> None:
        """Queue ``item`` without waiting; when the queue is full, drop what is
        queued and queue one ``Resync`` in its place."""
        if isinstance(item, LiveFrame) and self.skip_through is not None:
            partition, offset = self.skip_through
            if item.partition == partition and item.offset <= offset:
                return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            last_id = item.event_id if isinstance(item, LiveFrame) else None
            while not self._queue.empty():
                self._queue.get_nowait()
            RESYNCS.labels("slow_client").inc()
            logger.warning("SSE client too slow, sending resync user_id=%s", self.user_id)
            self._queue.put_nowait(item if item is CLOSE else Resync(last_id, "slow_client"))

    async def get(self) -> QueueItem:
        return await self._queue.get()


@dataclass
class _UserBuffer:
    partition: int
    frames: deque[LiveFrame]
    #: Offset of the newest frame dropped from ``frames``; a client whose last
    #: id is older than this cannot be replayed.
    evicted_through: int = -1
    keys: set[str] = field(default_factory=set)


class LiveHub:
    """Per-user replay buffers and the open subscriptions of one gateway.

    Every method is synchronous, so a subscribe that snapshots the buffer and
    a publish from the consumer never interleave: a frame is either replayed
    or delivered live, never both, never neither.
    """

    def __init__(self, replay_max: int, queue_max: int, users_max: int) -> None:
        self._replay_max = replay_max
        self._queue_max = queue_max
        self._users_max = users_max
        self._buffers: OrderedDict[str, _UserBuffer] = OrderedDict()
        self._subscriptions: dict[str, set[Subscription]] = {}
        #: Per partition, the first offset this gateway has read everything
        #: from (raised when a user's buffer is dropped to bound memory).
        self._complete_from: dict[int, int] = {}

    def start_partition(self, partition: int, offset: int) -> None:
        """Record that the consumer reads ``partition`` from ``offset`` on."""
        self._complete_from[partition] = offset

    def publish(self, user_id: str, frame: LiveFrame) -> None:
        """Buffer ``frame`` and queue it for every connection of ``user_id``.

        A frame whose dedupe key is already in the user's buffer is dropped.
        """
        buffer = self._buffers.get(user_id)
        if buffer is None or buffer.partition != frame.partition:
            buffer = _UserBuffer(frame.partition, deque())
            self._buffers[user_id] = buffer
            self._evict_users()
        self._buffers.move_to_end(user_id)
        if frame.dedupe_key is not None:
            if frame.dedupe_key in buffer.keys:
                LIVE_EVENTS.labels("duplicate").inc()
                return
            buffer.keys.add(frame.dedupe_key)
        buffer.frames.append(frame)
        if len(buffer.frames) > self._replay_max:
            dropped = buffer.frames.popleft()
            buffer.evicted_through = dropped.offset
            if dropped.dedupe_key is not None:
                buffer.keys.discard(dropped.dedupe_key)

        for subscription in self._subscriptions.get(user_id, ()):
            subscription.offer(frame)
        LIVE_EVENTS.labels("forwarded").inc()

    def _evict_users(self) -> None:
        while len(self._buffers) > self._users_max:
            user_id, buffer = self._buffers.popitem(last=False)
            if buffer.frames:
                # Whether this user had events before is forgotten, so every
                # client on the partition with an older id gets a resync.
                newest = buffer.frames[-1].offset
                current = self._complete_from.get(buffer.partition, 0)
                self._complete_from[buffer.partition] = max(current, newest + 1)
            logger.debug("replay buffer dropped user_id=%s", user_id)

    def subscribe(self, user_id: str, last_event_id: str | None) -> Subscription:
        """Open a subscription and queue what the client missed after ``last_event_id``.

        Without ``last_event_id`` only new events follow. When the id cannot
        be replayed (unknown, too old, or from another partition layout) one
        ``resync`` is queued first.
        """
        subscription = Subscription(user_id, self._queue_max)
        self._subscriptions.setdefault(user_id, set()).add(subscription)
        CONNECTIONS.inc()
        if last_event_id is not None:
            self._replay(subscription, last_event_id)
        return subscription

    def _replay(self, subscription: Subscription, last_event_id: str) -> None:
        buffer = self._buffers.get(subscription.user_id)
        position = parse_event_id(last_event_id)
        if position is None or (buffer is not None and buffer.partition != position[0]):
            self._resync(subscription, buffer, "unknown_id")
            return
        partition, offset = position
        complete_from = self._complete_from.get(partition)
        evicted_through = buffer.evicted_through if buffer is not None else -1
        if complete_from is None or offset + 1 < complete_from or offset < evicted_through:
            self._resync(subscription, buffer, "too_old")
            return
        subscription.skip_through = position
        for frame in buffer.frames if buffer is not None else ():
            if frame.offset > offset:
                subscription.offer(frame)
        if buffer is not None and buffer.frames:
            subscription.skip_through = (partition, max(offset, buffer.frames[-1].offset))

    def _resync(self, subscription: Subscription, buffer: _UserBuffer | None, cause: str) -> None:
        newest = buffer.frames[-1] if buffer is not None and buffer.frames else None
        RESYNCS.labels(cause).inc()
        subscription.offer(Resync(newest.event_id if newest is not None else None, cause))
        if newest is not None:
            subscription.skip_through = (newest.partition, newest.offset)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` at once; called when its connection closes."""
        subscriptions = self._subscriptions.get(subscription.user_id)
        if subscriptions is None or subscription not in subscriptions:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._subscriptions[subscription.user_id]
        CONNECTIONS.dec()

    def close_all(self) -> None:
        """Tell every open connection to end, so a shutdown does not wait on them."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.offer(CLOSE)

    @property
    def connection_count(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._subscriptions.values())


def parse_event_id(value: str) -> tuple[int, int] | None:
    """Return ``(partition, offset)`` of an id ``<partition>-<offset>``, or ``None``."""
    partition, separator, offset = value.strip().partition("-")
    if not separator or not partition.isdigit() or not offset.isdigit():
        return None
    return int(partition), int(offset)


class LiveConsumer:
    """Reads every partition of the live topic into a ``LiveHub``.

    1. Assign all partitions (no group) and seek each to at most
       ``live_backfill_per_partition`` records before its end, so the replay
       buffers hold recent events right after a restart.
    2. Decode each record and publish it to the hub; an invalid record is
       logged with its coordinates and skipped.

    ``start`` raises when the broker is unreachable; ``stop`` cancels the
    reading task and closes the consumer.
    """

    def __init__(self, settings: Settings, hub: LiveHub) -> None:
        self._settings = settings
        self._hub = hub
        self._topic = TopicNames(settings.topic_prefix).live
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()

        # 1. Assign and seek.
        partitions = [TopicPartition(self._topic, number) for number in range(self._settings.partitions)]
        self._consumer.assign(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        ends = await self._consumer.end_offsets(partitions)
        backfill = self._settings.live_backfill_per_partition
        for tp in partitions:
            offset = max(starts[tp], ends[tp] - backfill)
            self._consumer.seek(tp, offset)
            self._hub.start_partition(tp.partition, offset)
        self._task = asyncio.create_task(self._run(), name="live-consumer")
        logger.info("live consumer started topic=%s partitions=%s", self._topic, len(partitions))

    async def _run(self) -> None:
        # 2. Decode and publish.
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self._publish(record)

    def _publish(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = parse(LiveEvent, record.value or b"", "invalid_live_event")
        except InvalidRecordError as exc:
            LIVE_EVENTS.labels("invalid").inc()
            logger.warning(
                "invalid live record skipped topic=%s partition=%s offset=%s code=%s: %s",
                record.topic,
                record.partition,
                record.offset,
                exc.code,
                exc.message,
            )
            return
        data = orjson.dumps(event.data)
        frame = LiveFrame(record.partition, record.offset, event.type, data, event.dedupe_key)
        logger.debug(
            "live event partition=%s offset=%s user_id=%s type=%s",
            record.partition,
            record.offset,
            event.user_id,
            event.type,
        )
        self._hub.publish(event.user_id, frame)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._consumer.stop()
        logger.info("live consumer stopped")
