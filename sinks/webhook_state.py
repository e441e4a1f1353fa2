"""State the webhook receiver keeps between calls: hooks read from the
database, a token bucket per hook, and the producer to the webhooks topic."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.serialization import dumps
from schemas.webhooks import HookDefinition, WebhookReceived
from sinks.db import LazyPool
from streams.settings import Settings
from streams.topics import TopicNames

logger = logging.getLogger(__name__)

#: Hooks kept in one gateway's cache; past it the cache starts again empty.
MAX_CACHED_HOOKS = 10_000


class HookDirectory:
    """Hooks read from the ``webhook_hooks`` read model, each reused for
    ``cache_s`` seconds. An unknown id is cached too, so a flood of calls to
    a wrong URL costs one query per id and period."""

    def __init__(self, pool: LazyPool, cache_s: float) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, HookDefinition | None]] = {}

    async def get(self, hook_id: str) -> HookDefinition | None:
        """Return the hook, or ``None`` when it does not exist.

        Raises the database's connection errors (``sinks.db.TRANSIENT_ERRORS``)
        when the read model cannot be reached.
        """
        now = time.monotonic()
        cached = self._cache.get(hook_id)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        pool = await self._pool.get()
        raw = await pool.fetchval("SELECT definition FROM webhook_hooks WHERE hook_id = $1", hook_id)
        hook = HookDefinition.model_validate(orjson.loads(raw)) if raw is not None else None
        if len(self._cache) >= MAX_CACHED_HOOKS:
            self._cache.clear()
        self._cache[hook_id] = (now, hook)
        return hook


class RateLimiter:
    """A token bucket per hook: ``rate_per_s`` calls a second on average and
    up to ``burst`` at once. Each gateway counts on its own, so N gateways
    admit up to N times the rate."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, hook_id: str) -> int | None:
        """Take one token; return ``None`` when one was free, else the whole
        seconds until the next one is."""
        now = time.monotonic()
        tokens, updated = self._buckets.get(hook_id, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - updated) * self._rate_per_s)
        if tokens >= 1.0:
            self._buckets[hook_id] = (tokens - 1.0, now)
            return None
        self._buckets[hook_id] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self._rate_per_s))


class PublishError(Exception):
    """The broker did not acknowledge a webhook record in time."""


class WebhookPublisher:
    """Produces verified calls to the webhooks topic, waiting for ``acks=all``.

    The producer starts with the gateway; when the broker is unreachable then,
    the gateway still starts and each call tries again and gets a 503 until
    the broker is back.
    """

    def __init__(self, settings: Settings) -> None:
        self._bootstrap = settings.kafka_bootstrap
        self._topic = TopicNames(settings.topic_prefix).webhooks
        self._timeout_s = settings.webhook_publish_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._ensure_started()
        except PublishError:
            logger.warning("webhooks producer not started; calls get 503 until the broker is reachable")

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, record: WebhookReceived) -> None:
        """Produce ``record`` keyed by its user and wait for the broker.

        Raises ``PublishError`` when the broker does not acknowledge within
        the publish timeout.
        """
        producer = await self._ensure_started()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(self._topic, key=record.user_id.encode(), value=dumps(record)),
                timeout=self._timeout_s,
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            # NOTE: after a timeout the record may still reach the topic once
            # the broker is back; the delivery id makes it one message anyway.
            raise PublishError(f"broker did not acknowledge in {self._timeout_s:g} s: {exc!r}") from exc

    async def _ensure_started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    enable_idempotence=True,
                    acks="all",
                    # A batch that finds no partition leader for this long is
                    # failed rather than kept for a later send.
                    request_timeout_ms=int(self._timeout_s * 1000),
                )
                try:
                    await asyncio.wait_for(producer.start(), timeout=self._timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise PublishError(f"broker unreachable at {self._bootstrap}: {exc!r}") from exc
                self._producer = producer
                logger.info("webhooks producer started topic=%s", self._topic)
            return self._producer
