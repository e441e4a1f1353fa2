"""The HTTP gateway: health, metrics, the webhook receiver, the SSE stream and
the user endpoints (unread badge, push subscriptions), served from one aiohttp
application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from sinks import api
from sinks.db import LazyPool
from sinks.live import LiveConsumer, LiveHub
from sinks.sse import HUB_KEY, stream_live
from sinks.web_base import POOL_KEY, PRODUCER_KEY, SETTINGS_KEY, ProducerSlot
from sinks.webhook_receiver import add_webhook_routes
from streams.emit import EventProducer
from streams.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["POOL_KEY", "create_app", "serve"]

REQUESTS = Counter("luna_gateway_requests_total", "HTTP requests answered, by route and status.", ["route", "status"])


@web.middleware
async def count_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        REQUESTS.labels(route, str(exc.status)).inc()
        raise
    REQUESTS.labels(route, str(response.status)).inc()
    return response


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[count_requests])
    app[SETTINGS_KEY] = settings
    app[POOL_KEY] = LazyPool(settings)
    app[PRODUCER_KEY] = ProducerSlot()
    app[HUB_KEY] = LiveHub(settings.live_replay_max, settings.live_queue_max, settings.live_replay_users_max)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/triggers/live", stream_live)
    app.router.add_get("/api/triggers/pending/count", api.pending_count)
    app.router.add_post("/api/triggers/messages/read", api.mark_read)
    app.router.add_post("/api/triggers/push/subscribe", api.subscribe_push)
    app.router.add_post("/api/triggers/push/unsubscribe", api.unsubscribe_push)
    app.cleanup_ctx.append(_kafka_clients)
    app.on_shutdown.append(_close_streams)
    add_webhook_routes(app, settings, app[POOL_KEY])
    app.on_cleanup.append(_close_pool)
    return app


async def _kafka_clients(app: web.Application) -> AsyncIterator[None]:
    """Start the producer and the live consumer with the application; stop them in reverse."""
    settings = app[SETTINGS_KEY]
    producer = EventProducer.from_settings(settings)
    await producer.start()
    app[PRODUCER_KEY].producer = producer
    consumer = LiveConsumer(settings, app[HUB_KEY])
    try:
        await consumer.start()
    except BaseException:
        await producer.stop()
        raise
    yield
    await consumer.stop()
    app[PRODUCER_KEY].producer = None
    await producer.stop()


async def healthz(request: web.Request) -> web.Response:
    """Return 200 when a query to the database succeeds, 503 otherwise."""
    try:
        pool = await request.app[POOL_KEY].get()
        await pool.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        logger.warning("health check failed: %s", exc.__class__.__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _close_streams(app: web.Application) -> None:
    app[HUB_KEY].close_all()


async def _close_pool(app: web.Application) -> None:
    await app[POOL_KEY].close()


def serve(settings: Settings) -> None:
    # Cancelling a handler when its client disconnects is what frees an SSE
    # subscription at once instead of at the next heartbeat write.
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        print=None,
        handler_cancellation=True,
    )
