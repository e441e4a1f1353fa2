"""Application keys, JSON error bodies and request authentication shared by
the gateway's handlers."""

from __future__ import annotations

from aiohttp import web

from schemas.exceptions import AuthenticationError
from sinks.db import LazyPool
from streams.emit import EventProducer
from streams.settings import Settings
from streams.tokens import verify_token

#: Cookie that carries the token for browsers; ``EventSource`` sends cookies
#: but cannot set headers.
TOKEN_COOKIE = "luna_token"


class ProducerSlot:
    """The gateway's Kafka producer, started with the application.

    aiohttp warns when an application's keys change after it started, so the
    key holds this slot and the start-up hook fills it.
    """

    def __init__(self) -> None:
        self.producer: EventProducer | None = None

    def get(self) -> EventProducer:
        if self.producer is None:
            raise RuntimeError("the gateway's producer is not started")
        return self.producer


SETTINGS_KEY = web.AppKey("settings", Settings)
POOL_KEY = web.AppKey("pool", LazyPool)
PRODUCER_KEY = web.AppKey("producer", ProducerSlot)


def error_response(status: int, code: str, message: str) -> web.Response:
    """Return the JSON body ``{"error": code, "message": message}`` with ``status``."""
    return web.json_response({"error": code, "message": message}, status=status)


def authenticate(request: web.Request) -> str:
    """Return the user id named by the request's token.

    The token is read from ``Authorization: Bearer``, the ``luna_token``
    cookie or the ``token`` query parameter, in that order. Raises
    ``AuthenticationError``; ``LookupError`` when no key is configured.
    """
    key = request.app[SETTINGS_KEY].live_token_key
    if key is None:
        raise LookupError("LUNA_LIVE_TOKEN_KEY is not set")
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else None
    token = token or request.cookies.get(TOKEN_COOKIE) or request.query.get("token")
    return verify_token(key.get_secret_value().encode(), token)


def auth_error_response(exc: AuthenticationError | LookupError) -> web.Response:
    if isinstance(exc, LookupError):
        return error_response(503, "auth_not_configured", "the gateway has no token key; set LUNA_LIVE_TOKEN_KEY")
    return error_response(401, exc.code, exc.message)
