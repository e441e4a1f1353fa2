"""Verify webhook signatures over the raw request body.

Each function takes the body exactly as received, never re-serialised JSON,
because key order, whitespace and number formatting change the bytes. Every
comparison goes through ``hmac.compare_digest``. A call is accepted when any
one signature in the header matches any of the hook's active secrets, so a
rotation keeps the old secret valid during its grace period.

Every function returns ``None`` on success and raises ``SignatureError`` with
a stable code otherwise; no input makes them raise anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from schemas.exceptions import InvalidWebhookSecretError, LunaTriggersError
from schemas.webhooks import decode_whsec

#: Default tolerance between the sender's timestamp and our clock, in seconds,
#: in both directions (Standard Webhooks and Stripe both use 5 minutes).
DEFAULT_TOLERANCE_S = 300
_SHA256_HEX_LENGTH = 64
_SHA256_BYTES = 32


class SignatureError(LunaTriggersError):
    """A webhook call whose signature or timestamp does not verify."""

    code = "invalid_signature"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify_standard_webhooks(
    body: bytes,
    webhook_id: str | None,
    timestamp: str | None,
    signature: str | None,
    secrets: Sequence[str],
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Verify a Standard Webhooks 1.0 call.

    The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` and
    the key is the base64 part of each ``whsec_`` secret. The header lists
    space-separated ``v1,<base64>`` entries, and entries with other version
    tags are ignored. ``now_s`` is the current Unix time in seconds.
    """
    if not webhook_id:
        raise SignatureError("missing_webhook_id", "the webhook-id header is missing")
    signed_at = _check_timestamp(timestamp, "webhook-timestamp", now_s, tolerance_s)
    if not signature:
        raise SignatureError("missing_signature", "the webhook-signature header is missing")

    candidates = []
    for entry in signature.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == _SHA256_BYTES:
            candidates.append(decoded)
    if not candidates:
        raise SignatureError("invalid_signature", "webhook-signature has no 'v1,<base64 HMAC-SHA256>' entry")

    content = f"{webhook_id}.{signed_at}.".encode() + body
    for secret in secrets:
        try:
            key = decode_whsec(secret)
        except InvalidWebhookSecretError:
            continue
        expected = hmac.new(key, content, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise SignatureError("invalid_signature", "no webhook-signature entry matches the hook's secrets")


def verify_github(body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Verify GitHub's ``X-Hub-Signature-256: sha256=<hex>`` over the body.

    GitHub signs no timestamp, so replays are caught only by the delivery id.
    """
    if not signature:
        raise SignatureError("missing_signature", "the X-Hub-Signature-256 header is missing")
    prefix, _, digest = signature.partition("=")
    if prefix != "sha256" or not digest:
        raise SignatureError("invalid_signature", "X-Hub-Signature-256 must have the form 'sha256=<hex>'")
    _verify_hex(body, digest, secrets, "X-Hub-Signature-256")


def verify_hmac_sha256(body: bytes, signature: str | None, header: str, secrets: Sequence[str]) -> None:
    """Verify a plain HMAC-SHA256 hex digest of the body in ``header``.

    The value may carry GitHub's ``sha256=`` prefix. Nothing is timestamped,
    so replays are caught only by the delivery id.
    """
    if not signature:
        raise SignatureError("missing_signature", f"the {header} header is missing")
    digest = signature[len("sha256=") :] if signature.startswith("sha256=") else signature
    _verify_hex(body, digest, secrets, header)


def _verify_hex(body: bytes, digest: str, secrets: Sequence[str], header: str) -> None:
    if len(digest) != _SHA256_HEX_LENGTH:
        raise SignatureError("invalid_signature", f"{header} must carry a {_SHA256_HEX_LENGTH}-digit hex digest")
    try:
        candidate = bytes.fromhex(digest)
    except ValueError:
        raise SignatureError("invalid_signature", f"{header} is not hexadecimal") from None
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, candidate):
            return
    raise SignatureError("invalid_signature", f"{header} does not match the hook's secrets")


def verify_stripe(
    body: bytes,
    signature: str | None,
    secrets: Sequence[str],
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Verify ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>]``.

    The signed content is ``{t}.{body}`` and the ``whsec_`` secret is the key
    as a literal string, unlike Standard Webhooks. ``v0`` and other schemes
    are never accepted; any one ``v1`` entry is enough.
    """
    if not signature:
        raise SignatureError("missing_signature", "the Stripe-Signature header is missing")
    timestamp: str | None = None
    candidates = []
    for item in signature.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1" and len(value) == _SHA256_HEX_LENGTH:
            try:
                candidates.append(bytes.fromhex(value))
            except ValueError:
                continue
    signed_at = _check_timestamp(timestamp, "Stripe-Signature t", now_s, tolerance_s)
    if not candidates:
        raise SignatureError("invalid_signature", "Stripe-Signature has no 'v1=<hex>' entry")

    content = f"{signed_at}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), content, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise SignatureError("invalid_signature", "no Stripe-Signature v1 entry matches the hook's secrets")


def _check_timestamp(value: str | None, name: str, now_s: float, tolerance_s: float) -> int:
    """Return the timestamp in Unix seconds when it is within ``tolerance_s`` of ``now_s``."""
    if not value:
        raise SignatureError("missing_timestamp", f"the {name} timestamp is missing")
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SignatureError("invalid_timestamp", f"the {name} timestamp must be Unix seconds")
    signed_at = int(value)
    if abs(now_s - signed_at) > tolerance_s:
        raise SignatureError(
            "timestamp_out_of_tolerance",
            f"the {name} timestamp is more than {tolerance_s:g} s away from the server's clock",
        )
    return signed_at
