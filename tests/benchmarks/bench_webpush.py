"""Web Push: encrypted sends per second to the local push service."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import webpush

from schemas.push import PushSubscription
from sinks.webpush import WebPushSender
from tests.benchmarks.report import Figure, Section

DEVICES = 50
PAYLOAD = orjson.dumps({"title": "Luna", "body": "Nice work finishing the quarterly report!", "url": "/chat"})


def vapid_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()


def baseline_sends_per_s(subscriptions: list[dict[str, Any]], sends: int, key: str, origin: str) -> float:
    """pywebpush's plain ``webpush()`` call in a loop, one request at a time."""
    started = time.perf_counter()
    for number in range(sends):
        webpush(
            subscription_info=subscriptions[number % len(subscriptions)],
            data=PAYLOAD,
            vapid_private_key=key,
            vapid_claims={"sub": "mailto:bench@luna.invalid", "aud": origin},
            ttl=3600,
        )
    return sends / (time.perf_counter() - started)


async def sender_sends_per_s(subscriptions: list[dict[str, Any]], sends: int, key: str, origin: str) -> float:
    """The push sink's sender: concurrent sends over one reused session."""
    parsed = [PushSubscription.model_validate(item) for item in subscriptions]
    host = origin.split("//", 1)[1].split(":", 1)[0]
    async with WebPushSender(key, "mailto:bench@luna.invalid", timeout_s=30, allowed_hosts=[host]) as sender:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                sender.send(parsed[number % len(parsed)], PAYLOAD, ttl_s=3600, urgency="normal", topic="bench")
                for number in range(sends)
            )
        )
        return sends / (time.perf_counter() - started)


def run(sends: int) -> Section:
    service = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.push_service_main", str(DEVICES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None and service.stdin is not None
        info = orjson.loads(service.stdout.readline())
        origin, subscriptions = info["origin"], info["subscriptions"]
        key = vapid_key()
        baseline = baseline_sends_per_s(subscriptions, sends, key, origin)
        ours = asyncio.run(sender_sends_per_s(subscriptions, sends, key, origin))
        ours_10x = asyncio.run(sender_sends_per_s(subscriptions, sends * 10, key, origin))
        service.stdin.close()
        accepted = orjson.loads(service.stdout.readline())["accepted"]
    finally:
        if service.poll() is None:
            service.terminate()
        service.wait(timeout=30)
    expected = sends * 12
    section = Section(
        "Web Push",
        f"Encrypted (aes128gcm) and VAPID-signed sends to the local push service in a separate process, which "
        f"verifies every JWT and decrypts every body; {DEVICES} devices. Baseline: pywebpush's `webpush()` in a "
        f"loop, {sends} sends. Ours: `WebPushSender` (one aiohttp session, concurrent sends).",
        [
            Figure(f"sends/s, {sends} sends", ours, "sends/s", baseline=baseline, goal="ratio at least 5"),
            Figure(f"sends/s, {sends * 10} sends (10x)", ours_10x, "sends/s", baseline=baseline),
        ],
    )
    section.notes.append(f"The push service accepted {accepted} of {expected} messages (all three runs).")
    section.notes.append(
        f"Per-send cost at 10x the load: {1000 / ours_10x:.2f} ms against {1000 / ours:.2f} ms; both sides share "
        "the same two cores, so the push service's own decryption is part of every figure."
    )
    return section
