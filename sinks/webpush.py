"""Send one Web Push message (RFC 8030) with VAPID (RFC 8292) and aes128gcm
encryption (RFC 8291), and classify the push service's response.

pywebpush 2.5 encrypts (``WebPusher.encode``); this module sets the headers,
signs the VAPID token per endpoint origin and posts through one shared
aiohttp session, so connections to a push service are reused.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import socket
import time
from collections.abc import Collection
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from py_vapid import Vapid02
from pywebpush import WebPusher

from schemas.exceptions import InvalidSubscriptionError, PushSendError
from schemas.push import MAX_PLAINTEXT_BYTES, PushSubscription, validate_endpoint
from schemas.triggers import Priority

logger = logging.getLogger(__name__)

#: Lifetime of a VAPID token; push services accept at most 24 hours.
VAPID_TOKEN_LIFETIME_S = 12 * 3600
#: A signed token is reused for this long before a new one is signed.
VAPID_TOKEN_REUSE_S = 3600
URGENCY_BY_PRIORITY: dict[Priority, str] = {"low": "low", "normal": "normal", "high": "high", "critical": "high"}


class PublicOnlyResolver(AbstractResolver):
    """Resolves names like aiohttp's default resolver, but fails for a name
    that resolves only to loopback, private or link-local addresses (unless
    the host is allowed for a local test push service)."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        self._allowed_hosts = frozenset(allowed_hosts)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host in self._allowed_hosts:
            return results
        public = [result for result in results if ipaddress.ip_address(result["host"]).is_global]
        if not public:
            raise OSError(f"push endpoint host {host!r} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


class WebPushSender:
    """Encrypts, signs and posts push messages through one aiohttp session.

    Use as an async context manager; ``send`` may run concurrently for many
    subscriptions.
    """

    def __init__(
        self,
        vapid_private_key: str,
        vapid_subject: str,
        *,
        timeout_s: float,
        allowed_hosts: Collection[str] = (),
    ) -> None:
        self._vapid = Vapid02.from_string(vapid_private_key)
        self._subject = vapid_subject
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._allowed_hosts = tuple(allowed_hosts)
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebPushSender:
        connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(self._allowed_hosts), limit=100)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, subscription: PushSubscription, payload: bytes, *, ttl_s: int, urgency: str, topic: str
    ) -> int:
        """Post one encrypted message; return the push service's 2xx status.

        Raises ``PushSendError``: ``subscription_gone`` for 404 and 410 (not
        retriable), ``push_throttled`` for 429 and ``push_service_error`` for
        5xx or a network failure (retriable, with ``retry_after_s`` from
        ``Retry-After``), ``push_rejected`` for any other status.
        """
        assert self._session is not None, "use WebPushSender as an async context manager"
        if len(payload) > MAX_PLAINTEXT_BYTES:
            raise ValueError(f"push payload of {len(payload)} bytes is over {MAX_PLAINTEXT_BYTES}")
        try:
            validate_endpoint(subscription.endpoint, self._allowed_hosts)
        except InvalidSubscriptionError as exc:
            raise PushSendError(exc.code, exc.message) from exc

        body = WebPusher(subscription.info()).encode(payload, "aes128gcm")["body"]
        headers = {
            **self._vapid_headers(subscription.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl_s),
            "Urgency": urgency,
            "Topic": topic,
        }
        try:
            async with self._session.post(subscription.endpoint, data=body, headers=headers) as response:
                await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PushSendError(
                "push_service_error", f"push service unreachable: {exc.__class__.__name__}", retriable=True
            ) from exc
        if 200 <= status < 300:
            return status
        raise error_for_status(status, retry_after)

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        """Return the ``Authorization`` header for the endpoint's origin, signing a new
        token when the cached one is older than ``VAPID_TOKEN_REUSE_S``."""
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(origin)
        if cached is not None and now - cached[0] < VAPID_TOKEN_REUSE_S:
            return cached[1]
        claims: dict[str, Any] = {"aud": origin, "exp": int(now) + VAPID_TOKEN_LIFETIME_S, "sub": self._subject}
        headers: dict[str, str] = self._vapid.sign(claims)
        self._tokens[origin] = (now, headers)
        return headers


def error_for_status(status: int, retry_after: str | None) -> PushSendError:
    """Return the error for a push service's non-2xx response."""
    if status in (404, 410):
        return PushSendError("subscription_gone", f"push service responded {status}", http_status=status)
    if status == 429 or status >= 500:
        code = "push_throttled" if status == 429 else "push_service_error"
        return PushSendError(
            code,
            f"push service responded {status}",
            http_status=status,
            retriable=True,
            retry_after_s=parse_retry_after(retry_after),
        )
    return PushSendError("push_rejected", f"push service responded {status}", http_status=status)


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Return a ``Retry-After`` value (delay seconds or an HTTP date) as seconds
    from now, or ``None`` when it is missing or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def topic_for(occurrence_id: str) -> str:
    """Return the ``Topic`` header of an occurrence: 32 base64url characters,
    so a retry replaces an undelivered copy of the same message."""
    digest = hashlib.sha256(occurrence_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:32]
