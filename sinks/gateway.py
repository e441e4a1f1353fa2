"""The HTTP gateway: health, metrics and the webhook receiver; the SSE stream
and settings API are served from the same aiohttp application."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from sinks.db import LazyPool
from sinks.webhook_receiver import add_webhook_routes
from streams.settings import Settings

logger = logging.getLogger(__name__)

POOL_KEY = web.AppKey("pool", LazyPool)

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
    app[POOL_KEY] = LazyPool(settings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    add_webhook_routes(app, settings, app[POOL_KEY])
    app.on_cleanup.append(_close_pool)
    return app


async def healthz(request: web.Request) -> web.Response:
    """Return 200 when the database answers, 503 otherwise."""
    try:
        pool = await request.app[POOL_KEY].get()
        await pool.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        logger.warning("health check failed: %s", exc.__class__.__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _close_pool(app: web.Application) -> None:
    await app[POOL_KEY].close()


def serve(settings: Settings) -> None:
    web.run_app(create_app(settings), host=settings.gateway_host, port=settings.gateway_port, print=None)
