"""Web Push through a real worker and gateway to a local push service on loopback."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from streams.emit import EventProducer
from streams.tokens import mint_token
from tests.helpers import event, free_port, history_of, wait_for_trigger
from tests.push_service import LocalPushService
from tests.stack import Deployment, GatewayProcess, WorkerProcess, wait_until

TOKEN_KEY = "test-push-token-key"


def vapid_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()


async def post(url: str, user_id: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {mint_token(TOKEN_KEY.encode(), user_id, 300)}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.post(url, json=body) as response:
        return response.status, await response.json()


async def subscriptions_of(deployment: Deployment, user_id: str) -> list[str]:
    rows = await deployment.fetch("SELECT endpoint FROM push_subscriptions WHERE user_id = $1", user_id)
    return sorted(row["endpoint"] for row in rows)


def expected_payload(occurrence_id: str, preview: str) -> bytes:
    fields = {
        "type": "new_message",
        "occurrence_id": occurrence_id,
        "trigger_id": "tasks",
        "session_id": None,
        "priority": "normal",
        "preview": preview,
    }
    return orjson.dumps(fields)


async def test_push_reaches_devices(
    deployment: Deployment,
    start_worker: type[WorkerProcess],
    start_gateway: type[GatewayProcess],
    producer: EventProducer,
) -> None:
    service = await LocalPushService().start()
    try:
        deployment.extra_env.update(
            {
                "LUNA_LIVE_TOKEN_KEY": TOKEN_KEY,
                "LUNA_VAPID_PRIVATE_KEY": vapid_private_key(),
                "LUNA_PUSH_ALLOWED_TEST_HOSTS": '["127.0.0.1"]',
            }
        )
        start_worker(deployment).start()
        gateway = start_gateway(deployment, free_port()).start()
        deployment.cli(
            "triggers", "create", "--user", "fay", "--id", "tasks", "--event", "task.completed",
            "--channels", "chat,push", "--template", "Done: {title}",
        )  # fmt: skip
        deployment.cli(
            "triggers", "create", "--user", "fay", "--id", "notes", "--event", "note.created",
            "--channels", "chat,push", "--template", "Note: {body}",
        )  # fmt: skip
        await wait_for_trigger(deployment, "fay", "tasks")
        await wait_for_trigger(deployment, "fay", "notes")

        phone, laptop = service.add_device("phone"), service.add_device("laptop")
        for subscription in (phone, laptop):
            status, body = await post(f"{gateway.url}/api/triggers/push/subscribe", "fay", subscription)
            assert status == 201, body
        await wait_until(lambda: subscriptions_of(deployment, "fay"), lambda found: len(found) == 2)

        # The phone decrypts exactly the payload sent; the laptop is gone (410) and is removed.
        service.answer_next("laptop", 410)
        first = event("fay", "task.completed", {"task_id": "1", "title": "Write report"}, event_id="e1")
        await producer.emit(first)
        occurrence_id = "event:fay:e1:tasks"
        await wait_until(lambda: _received(service, "phone"), lambda found: len(found) == 1)
        assert service.received["phone"] == [expected_payload(occurrence_id, "Done: Write report")]
        await wait_until(lambda: subscriptions_of(deployment, "fay"), lambda found: found == [phone["endpoint"]])
        headers = next(a.headers for a in service.attempts if a.device == "phone" and a.status == 201)
        assert headers["TTL"] == "86400"
        assert headers["Urgency"] == "normal"
        assert len(headers["Topic"]) == 32

        # A 429 with Retry-After: 2 is retried after that delay.
        service.answer_next("phone", 429, retry_after="2")
        await producer.emit(event("fay", "task.completed", {"task_id": "2", "title": "Call back"}, event_id="e2"))
        await wait_until(lambda: _received(service, "phone"), lambda found: len(found) == 2, timeout_s=20)
        throttled, accepted = [a for a in service.attempts if a.device == "phone"][-2:]
        assert throttled.status == 429
        assert accepted.status == 201
        assert accepted.at_s - throttled.at_s >= 2.0

        # An oversized preview is shortened to fit the payload limit.
        await producer.emit(event("fay", "note.created", {"body": "x" * 5000}, event_id="e3"))
        await wait_until(lambda: _received(service, "phone"), lambda found: len(found) == 3, timeout_s=20)
        payload = service.received["phone"][2]
        assert len(payload) <= 3000
        preview = orjson.loads(payload)["preview"]
        assert preview.startswith("Note: xxx")
        assert preview.endswith("…")
        assert max(a.body_bytes for a in service.attempts) <= 4096

        # A redelivered event is not pushed twice.
        await producer.emit(first)
        await asyncio.sleep(2)
        assert len(service.received["phone"]) == 3

        # Every attempt is in the history, per device, with its own outcome.
        history = await wait_until(
            lambda: history_of(deployment, "fay"),
            lambda rows: sum(r["stage"] == "push" for r in rows) >= 5,
        )
        push_rows = [(r["status"], r["reason"]) for r in history if r["stage"] == "push"]
        assert sorted(push_rows) == sorted(
            [
                ("delivered", "accepted"),
                ("failed", "subscription_gone"),
                ("retrying", "push_throttled"),
                ("delivered", "accepted"),
                ("delivered", "accepted"),
            ]
        )
    finally:
        await service.stop()


async def _received(service: LocalPushService, device: str) -> list[bytes]:
    return list(service.received[device])


async def test_invalid_subscriptions_rejected(deployment: Deployment, start_gateway: type[GatewayProcess]) -> None:
    service = await LocalPushService().start()
    try:
        gateway = start_gateway(deployment, free_port(), LUNA_LIVE_TOKEN_KEY=TOKEN_KEY).start()
        url = f"{gateway.url}/api/triggers/push/subscribe"
        local = service.add_device("phone")
        valid = {**local, "endpoint": "https://push.example.com/send/abc"}
        keys = valid["keys"]
        not_on_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
        cases = [
            ({**valid, "endpoint": "http://push.example.com/x"}, "invalid_endpoint"),
            ({**valid, "endpoint": local["endpoint"]}, "invalid_endpoint"),
            ({**valid, "endpoint": "https://127.0.0.1/x"}, "endpoint_not_allowed"),
            ({**valid, "endpoint": "https://10.1.2.3/x"}, "endpoint_not_allowed"),
            ({**valid, "endpoint": "https://169.254.169.254/x"}, "endpoint_not_allowed"),
            ({**valid, "endpoint": "https://[::1]/x"}, "endpoint_not_allowed"),
            ({**valid, "endpoint": "https://localhost/x"}, "endpoint_not_allowed"),
            ({**valid, "keys": {**keys, "p256dh": keys["p256dh"][:40]}}, "invalid_p256dh"),
            ({**valid, "keys": {**keys, "p256dh": not_on_curve}}, "invalid_p256dh"),
            ({**valid, "keys": {**keys, "auth": "AAAAAAAAAAAAAAAAAAAA"}}, "invalid_auth"),
            ({**valid, "keys": {**keys, "auth": "not base64!"}}, "invalid_auth"),
            ({"endpoint": "https://push.example.com/x"}, "invalid_subscription"),
        ]
        for body, code in cases:
            status, answer = await post(url, "gus", body)
            assert status == 400, (body, answer)
            assert answer["error"] == code, (body, answer)
            assert answer["message"]
        status, answer = await post(url, "gus", valid)
        assert status == 201
        assert len(answer["subscription_id"]) == 32
    finally:
        await service.stop()
