"""SSE framing, the fan-out's memory bounds, tokens and push payload sizes, without a broker."""

from __future__ import annotations

import base64
import os

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher

from schemas.exceptions import AuthenticationError
from schemas.push import MAX_PLAINTEXT_BYTES, encode_push_payload
from sinks.live import LiveFrame, LiveHub, Resync
from sinks.sse import format_event
from streams.tokens import mint_token, verify_token


def test_format_event_strips_line_breaks_from_fields() -> None:
    frame = format_event("x", event="new\r\nmessage\r", event_id="1-2\nevent: forged\0")
    assert frame == b"id: 1-2event: forged\nevent: newmessage\ndata: x\n\n"


def test_format_event_splits_multiline_data() -> None:
    assert format_event("a\nb\r\nc\rd", event="e") == b"event: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


async def test_slow_client_gets_one_resync() -> None:
    hub = LiveHub(replay_max=10, queue_max=3, users_max=10)
    hub.start_partition(0, 0)
    subscription = hub.subscribe("ann", None)
    for offset in range(5):
        hub.publish("ann", LiveFrame(0, offset, "new_message", b"{}"))
    first = await subscription.get()
    assert isinstance(first, Resync)
    assert first.event_id == "0-3"
    second = await subscription.get()
    assert isinstance(second, LiveFrame)
    assert second.offset == 4
    hub.unsubscribe(subscription)
    assert hub.connection_count == 0


async def test_duplicate_dedupe_key_forwarded_once() -> None:
    hub = LiveHub(replay_max=10, queue_max=10, users_max=10)
    hub.start_partition(0, 0)
    subscription = hub.subscribe("ann", None)
    hub.publish("ann", LiveFrame(0, 0, "new_message", b"{}", dedupe_key="m1"))
    hub.publish("ann", LiveFrame(0, 1, "new_message", b"{}", dedupe_key="m1"))
    hub.publish("ann", LiveFrame(0, 2, "new_message", b"{}", dedupe_key="m2"))
    assert [(await subscription.get()).offset for _ in range(2)] == [0, 2]  # type: ignore[attr-defined]


def test_token_round_trip_and_rejections() -> None:
    key = b"k" * 32
    assert verify_token(key, mint_token(key, "ann", 60)) == "ann"
    with pytest.raises(AuthenticationError) as expired:
        verify_token(key, mint_token(key, "ann", 60, now_s=1000), now_s=1061)
    assert expired.value.code == "token_expired"
    with pytest.raises(AuthenticationError) as forged:
        verify_token(key, mint_token(b"other", "ann", 60))
    assert forged.value.code == "token_invalid"


def _subscription() -> dict[str, object]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    encode = base64.urlsafe_b64encode
    return {"endpoint": "https://push.example.com/x", "keys": {"p256dh": encode(point), "auth": encode(os.urandom(16))}}


def test_aes128gcm_body_size_limit() -> None:
    pusher = WebPusher(_subscription())
    assert MAX_PLAINTEXT_BYTES == 3993
    assert len(pusher.encode(b"a" * 3993, "aes128gcm")["body"]) == 4096
    assert len(pusher.encode(b"a" * 3994, "aes128gcm")["body"]) == 4097


def test_payload_preview_shortened_to_fit() -> None:
    fields = {"type": "new_message", "occurrence_id": "o"}
    payload = encode_push_payload(fields, "é\n" * 3000, MAX_PLAINTEXT_BYTES)
    assert len(payload) <= MAX_PLAINTEXT_BYTES
    preview = orjson.loads(payload)["preview"]
    assert preview.endswith("…")
    assert encode_push_payload(fields, "short", 3000) == orjson.dumps({**fields, "preview": "short"})
