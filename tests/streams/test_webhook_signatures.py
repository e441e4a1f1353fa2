"""Signature checks of GitHub, Stripe, Standard Webhooks and plain HMAC calls.

The GitHub and Standard Webhooks values are the examples those
specifications publish.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from streams.webhook_signatures import (
    SignatureError,
    verify_github,
    verify_hmac_sha256,
    verify_standard_webhooks,
    verify_stripe,
)

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_HEX = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = "1614265330"
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

STRIPE_SECRET = "whsec_test_secret_for_luna_0123456789"
STRIPE_BODY = b'{"id": "evt_1", "type": "invoice.paid", "amount": 10.50}'
STRIPE_NOW = 1_700_000_000


def stripe_hex(timestamp: int, body: bytes = STRIPE_BODY, secret: str = STRIPE_SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def github_code(signature: str | None) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_github(GITHUB_BODY, signature, [GITHUB_SECRET])
    return caught.value.code


def test_github_published_example_accepted() -> None:
    verify_github(GITHUB_BODY, f"sha256={GITHUB_HEX}", [GITHUB_SECRET])


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (GITHUB_HEX, "invalid_signature"),
        (f"sha256={GITHUB_HEX[:-1]}", "invalid_signature"),
        (f"sha256={GITHUB_HEX}"[:-1], "invalid_signature"),
        (f"sha1={GITHUB_HEX}", "invalid_signature"),
        (f"sha256={GITHUB_HEX}00", "invalid_signature"),
        (f"sha256={'z' * 64}", "invalid_signature"),
        (f"sha256={'é' * 64}", "invalid_signature"),
        ("sha256=", "invalid_signature"),
        ("", "missing_signature"),
        (None, "missing_signature"),
    ],
)
def test_github_bad_header_rejected(signature: str | None, code: str) -> None:
    assert github_code(signature) == code


def test_github_wrong_secret_or_body_rejected() -> None:
    with pytest.raises(SignatureError):
        verify_github(GITHUB_BODY, f"sha256={GITHUB_HEX}", ["another secret of 26 chars"])
    with pytest.raises(SignatureError):
        verify_github(b"Hello, World!\n", f"sha256={GITHUB_HEX}", [GITHUB_SECRET])


def test_github_any_active_secret_matches() -> None:
    verify_github(GITHUB_BODY, f"sha256={GITHUB_HEX}", ["the newer secret after rotation", GITHUB_SECRET])


def test_standard_webhooks_published_example() -> None:
    now = int(SW_TIMESTAMP)
    verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, [SW_SECRET], now)
    verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, [SW_SECRET], now + 300)
    verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, [SW_SECRET], now - 300)


@pytest.mark.parametrize("offset_s", [301, -301, 86_400])
def test_standard_webhooks_timestamp_out_of_tolerance(offset_s: int) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, [SW_SECRET], int(SW_TIMESTAMP) + offset_s)
    assert caught.value.code == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    ("webhook_id", "timestamp", "signature", "code"),
    [
        (SW_ID, None, SW_SIGNATURE, "missing_timestamp"),
        (SW_ID, "", SW_SIGNATURE, "missing_timestamp"),
        (SW_ID, "1614265330.0", SW_SIGNATURE, "invalid_timestamp"),
        (SW_ID, "-1614265330", SW_SIGNATURE, "invalid_timestamp"),
        (SW_ID, "soon", SW_SIGNATURE, "invalid_timestamp"),
        (SW_ID, "١٦١٤٢٦٥٣٣٠", SW_SIGNATURE, "invalid_timestamp"),
        (None, SW_TIMESTAMP, SW_SIGNATURE, "missing_webhook_id"),
        (SW_ID, SW_TIMESTAMP, None, "missing_signature"),
        (SW_ID, SW_TIMESTAMP, "", "missing_signature"),
        (SW_ID, SW_TIMESTAMP, SW_SIGNATURE[3:], "invalid_signature"),
        (SW_ID, SW_TIMESTAMP, SW_SIGNATURE[:-1], "invalid_signature"),
        (SW_ID, SW_TIMESTAMP, "v1,", "invalid_signature"),
        (SW_ID, SW_TIMESTAMP, "v2," + SW_SIGNATURE[3:], "invalid_signature"),
        (SW_ID, SW_TIMESTAMP, "v1a," + SW_SIGNATURE[3:], "invalid_signature"),
        (SW_ID, SW_TIMESTAMP, "v1,AAAA", "invalid_signature"),
        ("msg_other", SW_TIMESTAMP, SW_SIGNATURE, "invalid_signature"),
    ],
)
def test_standard_webhooks_bad_headers(
    webhook_id: str | None, timestamp: str | None, signature: str | None, code: str
) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_standard_webhooks(SW_BODY, webhook_id, timestamp, signature, [SW_SECRET], int(SW_TIMESTAMP))
    assert caught.value.code == code


def test_standard_webhooks_any_v1_entry_matches() -> None:
    header = f"v2,abc v1,{'A' * 43}= {SW_SIGNATURE}"
    verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, header, [SW_SECRET], int(SW_TIMESTAMP))


def test_standard_webhooks_body_bytes_matter() -> None:
    reserialised = b'{"test":2432232314}'
    with pytest.raises(SignatureError):
        verify_standard_webhooks(reserialised, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, [SW_SECRET], int(SW_TIMESTAMP))


def test_standard_webhooks_malformed_stored_secret_skipped() -> None:
    verify_standard_webhooks(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SIGNATURE, ["v1,whsec_bad", SW_SECRET], int(SW_TIMESTAMP))


def test_stripe_signature_accepted() -> None:
    header = f"t={STRIPE_NOW},v1={'0' * 64},v1={stripe_hex(STRIPE_NOW)}"
    verify_stripe(STRIPE_BODY, header, [STRIPE_SECRET], STRIPE_NOW + 300)


@pytest.mark.parametrize(
    ("header", "now_s", "code"),
    [
        (f"t={STRIPE_NOW},v0={stripe_hex(STRIPE_NOW)}", STRIPE_NOW, "invalid_signature"),
        (f"t={STRIPE_NOW},v1={stripe_hex(STRIPE_NOW)}", STRIPE_NOW + 301, "timestamp_out_of_tolerance"),
        (f"t={STRIPE_NOW},v1={stripe_hex(STRIPE_NOW)}", STRIPE_NOW - 301, "timestamp_out_of_tolerance"),
        (f"v1={stripe_hex(STRIPE_NOW)}", STRIPE_NOW, "missing_timestamp"),
        (f"t=now,v1={stripe_hex(STRIPE_NOW)}", STRIPE_NOW, "invalid_timestamp"),
        (f"t={STRIPE_NOW},v1={stripe_hex(STRIPE_NOW)[:-1]}", STRIPE_NOW, "invalid_signature"),
        (f"t={STRIPE_NOW},v1={stripe_hex(STRIPE_NOW + 1)}", STRIPE_NOW, "invalid_signature"),
        (f"t={STRIPE_NOW}", STRIPE_NOW, "invalid_signature"),
        (",,,", STRIPE_NOW, "missing_timestamp"),
        ("", STRIPE_NOW, "missing_signature"),
        (None, STRIPE_NOW, "missing_signature"),
    ],
)
def test_stripe_bad_headers(header: str | None, now_s: int, code: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_stripe(STRIPE_BODY, header, [STRIPE_SECRET], now_s)
    assert caught.value.code == code


def test_stripe_secret_used_as_literal_string() -> None:
    header = f"t={STRIPE_NOW},v1={stripe_hex(STRIPE_NOW, secret=SW_SECRET)}"
    verify_stripe(STRIPE_BODY, header, [SW_SECRET], STRIPE_NOW)


@pytest.mark.parametrize("prefix", ["", "sha256="])
def test_hmac_sha256_accepted(prefix: str) -> None:
    verify_hmac_sha256(GITHUB_BODY, prefix + GITHUB_HEX, "X-Signature-256", [GITHUB_SECRET])


@pytest.mark.parametrize("value", [None, "", GITHUB_HEX[:-1], GITHUB_HEX.upper()[:-2] + "zz", "sha256"])
def test_hmac_sha256_rejected(value: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_hmac_sha256(GITHUB_BODY, value, "X-Signature-256", [GITHUB_SECRET])
