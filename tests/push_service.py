"""A local push service for tests and the demo, checking requests as a vendor's does.

It listens on 127.0.0.1 over plain http (the sender allows that host through
``LUNA_PUSH_ALLOWED_TEST_HOSTS``) and, for each ``POST /push/<name>``:

1. verifies the VAPID token of ``Authorization: vapid t=...,k=...``: an
   ES256 signature by the key ``k``, ``aud`` equal to this service's origin,
   ``exp`` in the future and at most 24 hours ahead, ``sub`` a mailto: or
   https: URL (RFC 8292);
2. checks ``TTL``, ``Urgency``, ``Topic``, ``Content-Encoding: aes128gcm`` and
   the 4096-byte body limit (RFC 8030);
3. decrypts the body with the subscriber's private key and auth secret
   (RFC 8291) and stores the plaintext, or answers a status queued with
   ``answer_next``.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import http_ece
import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

MAX_BODY_BYTES = 4096
URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One browser subscription: its name in the endpoint path and its keys."""

    name: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def subscription(self, origin: str) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": f"{origin}/push/{self.name}", "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}


@dataclass
class Attempt:
    """One request the service received, with its response."""

    device: str
    status: int
    at_s: float
    headers: dict[str, str]
    body_bytes: int
    error: str | None = None


@dataclass
class LocalPushService:
    devices: dict[str, Device] = field(default_factory=dict)
    #: Decrypted payloads per device, in arrival order.
    received: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    attempts: list[Attempt] = field(default_factory=list)
    _answers: dict[str, deque[tuple[int, str | None]]] = field(default_factory=lambda: defaultdict(deque))
    _runner: web.AppRunner | None = None
    origin: str = ""

    async def start(self) -> LocalPushService:
        app = web.Application()
        app.router.add_post("/push/{name}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.origin = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add_device(self, name: str) -> dict[str, Any]:
        """Create a subscriber and return its ``PushSubscription`` JSON."""
        device = Device(name, ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self.devices[name] = device
        return device.subscription(self.origin)

    def answer_next(self, name: str, status: int, retry_after: str | None = None) -> None:
        """Respond to the next request for ``name`` with ``status`` instead of accepting it."""
        self._answers[name].append((status, retry_after))

    async def _receive(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        headers = dict(request.headers)

        def answer(status: int, error: str | None = None, extra: dict[str, str] | None = None) -> web.Response:
            self.attempts.append(Attempt(name, status, time.monotonic(), headers, len(body), error))
            return web.json_response({"error": error} if error else {}, status=status, headers=extra)

        device = self.devices.get(name)
        if device is None:
            return answer(404, "unknown subscription")
        problem = self._check_request(request, body)
        if problem is not None:
            if problem == "payload too large":
                return answer(413, problem)
            if "header" in problem:
                return answer(400, problem)
            return answer(403, problem)
        if self._answers[name]:
            status, retry_after = self._answers[name].popleft()
            return answer(
                status, f"answered {status} on request", {"Retry-After": retry_after} if retry_after else None
            )
        try:
            plaintext = http_ece.decrypt(
                body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
            )
        except Exception as exc:  # noqa: BLE001 - any decryption failure is the sender's fault
            return answer(400, f"decryption failed: {exc}")
        self.received[name].append(plaintext)
        return answer(201, extra={"Location": f"{self.origin}/message/{len(self.attempts)}"})

    def _check_request(self, request: web.Request, body: bytes) -> str | None:
        """Return what is wrong with the request, or ``None``."""
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return "missing or invalid TTL header"
        if request.headers.get("Urgency", "normal") not in URGENCIES:
            return "invalid Urgency header"
        topic = request.headers.get("Topic")
        if topic is not None and not _TOPIC.match(topic):
            return "invalid Topic header"
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return "Content-Encoding header is not aes128gcm"
        if len(body) > MAX_BODY_BYTES:
            return "payload too large"
        return self._check_vapid(request.headers.get("Authorization", ""))

    def _check_vapid(self, authorization: str) -> str | None:
        match = re.fullmatch(r"vapid t=([A-Za-z0-9_.-]+),\s*k=([A-Za-z0-9_-]+)", authorization.strip())
        if match is None:
            return "Authorization is not vapid t=...,k=..."
        token, key = match.groups()
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = orjson.loads(unb64url(header_b64))
            claims = orjson.loads(unb64url(claims_b64))
            signature = unb64url(signature_b64)
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        except ValueError as exc:
            return f"malformed VAPID token: {exc}"
        if header.get("alg") != "ES256" or len(signature) != 64:
            return "VAPID token is not ES256"
        der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return "VAPID signature does not verify"
        now = time.time()
        if claims.get("aud") != self.origin:
            return f"VAPID aud {claims.get('aud')!r} is not {self.origin!r}"
        expires = claims.get("exp")
        if not isinstance(expires, int) or expires <= now or expires > now + 24 * 3600:
            return "VAPID exp is not within the next 24 hours"
        subject = claims.get("sub", "")
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https://")):
            return "VAPID sub is not a mailto: or https: URL"
        return None
