"""Short-lived signed tokens that name a user, for the SSE stream and the user endpoints.

A token is ``v1.<payload>.<signature>``: the payload is base64url JSON
``{"sub": user_id, "exp": unix seconds}`` and the signature is base64url
HMAC-SHA256 over ``v1.<payload>`` with the ``live_token_key`` setting.
``EventSource`` cannot set headers, so the token travels in a cookie or the
query string, which is why it lives minutes, not days.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

import orjson

from schemas.events import USER_ID_PATTERN
from schemas.exceptions import AuthenticationError

_VERSION = "v1"
_USER_ID = re.compile(USER_ID_PATTERN)


def mint_token(key: bytes, user_id: str, ttl_s: int, now_s: float | None = None) -> str:
    """Return a token for ``user_id`` that expires ``ttl_s`` seconds from now."""
    issued = time.time() if now_s is None else now_s
    payload = _b64encode(orjson.dumps({"sub": user_id, "exp": int(issued + ttl_s)}))
    return f"{_VERSION}.{payload}.{_sign(key, payload)}"


def verify_token(key: bytes, token: str | None, now_s: float | None = None) -> str:
    """Return the user id of a valid token.

    Raises ``AuthenticationError`` with ``token_missing``, ``token_malformed``,
    ``token_invalid`` (the signature does not match) or ``token_expired``.
    """
    if not token:
        raise AuthenticationError(
            "token_missing",
            "no token: send it as the luna_token cookie, the token query parameter or an Authorization: Bearer header",
        )
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise AuthenticationError("token_malformed", "token is not of the form v1.<payload>.<signature>")
    payload = parts[1]
    if not hmac.compare_digest(_sign(key, payload), parts[2]):
        raise AuthenticationError("token_invalid", "token signature does not match; mint a new token")
    try:
        claims = orjson.loads(_b64decode(payload))
        user_id, expires = claims["sub"], claims["exp"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise AuthenticationError("token_malformed", "token payload is not valid") from exc
    if not isinstance(user_id, str) or not isinstance(expires, int) or not _USER_ID.fullmatch(user_id):
        raise AuthenticationError("token_malformed", "token payload is not valid")
    if expires <= (time.time() if now_s is None else now_s):
        raise AuthenticationError("token_expired", "token has expired; mint a new token")
    return user_id


def _sign(key: bytes, payload: str) -> str:
    return _b64encode(hmac.new(key, f"{_VERSION}.{payload}".encode(), hashlib.sha256).digest())


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
