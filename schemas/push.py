"""Web Push subscriptions, the commands that change them, and push payloads.

A browser's ``PushSubscription`` (RFC 8030) names an endpoint chosen by the
browser's vendor and the keys of RFC 8291 message encryption. Subscriptions
reach the worker only through the commands topic, like triggers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Collection
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import USER_ID_PATTERN
from schemas.exceptions import InvalidSubscriptionError

#: RFC 8291 keys: an uncompressed P-256 point and a 16-byte secret.
P256DH_BYTES = 65
AUTH_BYTES = 16
#: With aes128gcm and one record, the body is the plaintext plus 103 bytes
#: (86 of header, a 1-byte padding delimiter and a 16-byte tag), and push
#: services reject bodies over 4096 bytes (RFC 8030 section 7.2).
MAX_PLAINTEXT_BYTES = 4096 - 103

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PushKeys(_Frozen):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class PushSubscription(_Frozen):
    """A browser's push subscription as ``PushSubscription.toJSON()`` returns it."""

    endpoint: str = Field(max_length=2048)
    keys: PushKeys
    user_agent: str | None = Field(default=None, max_length=512)

    @property
    def subscription_id(self) -> str:
        return subscription_id_of(self.endpoint)

    def info(self) -> dict[str, Any]:
        """The ``subscription_info`` mapping that pywebpush expects."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.keys.p256dh, "auth": self.keys.auth}}


def subscription_id_of(endpoint: str) -> str:
    """Return the stable id of the subscription at ``endpoint`` (32 hex digits)."""
    return hashlib.sha256(endpoint.encode()).hexdigest()[:32]


class SubscriptionCommand(_Frozen):
    """A change to one push subscription, published to the commands topic."""

    command_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(pattern=USER_ID_PATTERN)
    issued_at: AwareDatetime
    action: Literal["subscribe", "unsubscribe"]
    subscription_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    #: The whole subscription for ``subscribe``; ``None`` for ``unsubscribe``.
    subscription: PushSubscription | None = None
    #: Why an unsubscribe happened: ``user`` or ``gone`` (the push service
    #: returned 404 or 410).
    reason: str | None = None
    schema_version: Literal[1] = 1


SUBSCRIPTION_ACTIONS = frozenset({"subscribe", "unsubscribe"})


def validate_subscription(subscription: PushSubscription, allowed_hosts: Collection[str] = ()) -> None:
    """Check a subscription before it is stored.

    Raises ``InvalidSubscriptionError`` with the code ``invalid_endpoint``,
    ``endpoint_not_allowed``, ``invalid_p256dh`` or ``invalid_auth``.
    ``allowed_hosts`` lists hosts that may be plain http and loopback or
    private (a local test push service); production leaves it empty.
    """
    validate_endpoint(subscription.endpoint, allowed_hosts)

    p256dh = _decode_base64url(subscription.keys.p256dh, "invalid_p256dh", "p256dh")
    if len(p256dh) != P256DH_BYTES or p256dh[0] != 0x04:
        raise InvalidSubscriptionError(
            "invalid_p256dh", f"p256dh must be a {P256DH_BYTES}-byte uncompressed P-256 point, got {len(p256dh)} bytes"
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError as exc:
        raise InvalidSubscriptionError("invalid_p256dh", "p256dh is not a point on the P-256 curve") from exc

    auth = _decode_base64url(subscription.keys.auth, "invalid_auth", "auth")
    if len(auth) != AUTH_BYTES:
        raise InvalidSubscriptionError("invalid_auth", f"auth must be {AUTH_BYTES} bytes, got {len(auth)}")


def validate_endpoint(endpoint: str, allowed_hosts: Collection[str] = ()) -> None:
    """Check that ``endpoint`` is an https URL on a public host.

    A host name is checked again when it is resolved (see the push sender),
    because a public name can resolve to a private address.
    """
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidSubscriptionError("invalid_endpoint", f"endpoint is not a valid URL: {exc}") from exc
    if not host:
        raise InvalidSubscriptionError("invalid_endpoint", "endpoint has no host")
    if host in allowed_hosts:
        if parts.scheme not in ("https", "http"):
            raise InvalidSubscriptionError("invalid_endpoint", f"endpoint scheme {parts.scheme!r} is not http(s)")
        return
    if parts.scheme != "https":
        raise InvalidSubscriptionError("invalid_endpoint", f"endpoint must use https, got {parts.scheme!r}")
    if host == "localhost" or host.endswith(".localhost") or is_non_public_address(host):
        raise InvalidSubscriptionError(
            "endpoint_not_allowed", f"endpoint host {host!r} is loopback, private or link-local"
        )


def is_non_public_address(host: str) -> bool:
    """Return True when ``host`` is an IP literal outside the public internet."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global or address.is_multicast


def _decode_base64url(value: str, code: str, name: str) -> bytes:
    if not _BASE64URL.match(value):
        raise InvalidSubscriptionError(code, f"{name} is not base64url")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidSubscriptionError(code, f"{name} is not base64url: {exc}") from exc


def encode_push_payload(fields: dict[str, Any], preview: str, max_bytes: int) -> bytes:
    """Encode ``fields`` plus ``preview`` as JSON of at most ``max_bytes`` bytes.

    The preview is shortened (ending in an ellipsis) until the payload fits.
    Raises ``ValueError`` when even an empty preview does not fit.
    """
    payload = orjson.dumps({**fields, "preview": preview})
    if len(payload) <= max_bytes:
        return payload
    if len(orjson.dumps({**fields, "preview": "…"})) > max_bytes:
        raise ValueError(f"push payload without preview is over {max_bytes} bytes")
    # Binary search on the character count: escaping makes the byte length
    # of a prefix hard to predict, but it grows with the prefix.
    low, high = 0, len(preview)
    while low < high:
        middle = (low + high + 1) // 2
        if len(orjson.dumps({**fields, "preview": preview[:middle] + "…"})) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return orjson.dumps({**fields, "preview": preview[:low] + "…"})
