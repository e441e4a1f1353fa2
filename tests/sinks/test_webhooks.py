"""Webhook calls through a real gateway and worker, broker and database."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator

import aiohttp
import orjson
import pytest

from streams.emit import EventProducer
from tests.helpers import history_of, messages_of, wait_for_messages
from tests.sinks.webhook_support import (
    GatewayProcess,
    create_hook,
    github_headers,
    post,
    standard_headers,
    stripe_headers,
    wait_for_hook,
)
from tests.stack import Deployment, WorkerProcess, wait_until

GITHUB_SECRET = "gh-secret-for-the-webhook-tests"
STRIPE_SECRET = "whsec_stripe_secret_for_the_webhook_tests"
MAX_BODY_BYTES = 2048


@pytest.fixture
def gateway(deployment: Deployment) -> Iterator[GatewayProcess]:
    started = GatewayProcess(
        deployment, LUNA_WEBHOOK_HOOK_CACHE_S="0.2", LUNA_WEBHOOK_MAX_BODY_BYTES=str(MAX_BODY_BYTES)
    ).start()
    yield started
    started.stop()


async def github_hook(deployment: Deployment, user_id: str, hook_id: str, template: str) -> None:
    create_hook(
        deployment,
        user_id,
        "--id",
        hook_id,
        "--name",
        "GitHub",
        "--scheme",
        "github",
        "--secret",
        GITHUB_SECRET,
        "--template",
        template,
    )
    await wait_for_hook(deployment, hook_id)


async def test_github_push_reaches_chat(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    await github_hook(deployment, "gina", "gh-gina-01", "{pusher.name} pushed to {repository.full_name}: {head}")
    push = {
        "ref": "refs/heads/main",
        "head": "Fix the flaky test",
        "pusher": {"name": "gina"},
        "repository": {"full_name": "gina/garden", "stars": 10.50},
    }
    body = orjson.dumps(push)

    status, answer, _ = await post(gateway.url("gh-gina-01"), body, github_headers(body, GITHUB_SECRET, "d-1"))
    assert status == 202
    assert answer == {"status": "accepted", "delivery_id": "d-1"}

    form = urllib.parse.urlencode({"payload": orjson.dumps({**push, "head": "Form-encoded"}).decode()}).encode()
    headers = github_headers(form, GITHUB_SECRET, "d-2")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, _, _ = await post(gateway.url("gh-gina-01"), form, headers)
    assert status == 202

    rows = await wait_for_messages(deployment, "gina", 2, timeout_s=30)
    assert sorted(row["content"] for row in rows) == [
        "gina pushed to gina/garden: Fix the flaky test",
        "gina pushed to gina/garden: Form-encoded",
    ]
    metadata = orjson.loads(rows[0]["metadata"])
    assert metadata["source"] == "webhook"
    assert metadata["trigger_id"] == "gh-gina-01"
    assert {orjson.loads(row["metadata"])["occurrence_id"] for row in rows} == {
        "webhook:gina:gh-gina-01:d-1",
        "webhook:gina:gh-gina-01:d-2",
    }


async def test_stripe_event_reaches_chat(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    create_hook(
        deployment,
        "sam",
        "--id",
        "stripe-sam-1",
        "--name",
        "Stripe",
        "--scheme",
        "stripe",
        "--secret",
        STRIPE_SECRET,
        "--template",
        "Payment received: {data.object.amount_paid} {data.object.currency} ({event_type})",
    )
    await wait_for_hook(deployment, "stripe-sam-1")
    event = {
        "id": "evt_1Nxyz",
        "type": "invoice.paid",
        "data": {"object": {"amount_paid": 1250, "currency": "eur"}},
    }
    body = orjson.dumps(event)

    status, answer, _ = await post(gateway.url("stripe-sam-1"), body, stripe_headers(body, STRIPE_SECRET))
    assert status == 202
    assert answer["delivery_id"] == "evt_1Nxyz"

    rows = await wait_for_messages(deployment, "sam", 1, timeout_s=30)
    assert [row["content"] for row in rows] == ["Payment received: 1250 eur (invoice.paid)"]


async def test_same_delivery_twice_one_message(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    printed = create_hook(deployment, "rita", "--name", "Standard", "--template", "Test value {test}")
    hook_id = printed["url"].rsplit("/", 1)[1]
    secret = printed["secret"]
    assert printed["url"].startswith("http://")
    assert secret.startswith("whsec_")
    await wait_for_hook(deployment, hook_id)
    body = b'{"test": 2432232314}'
    headers = standard_headers(body, secret, "msg_p5jXN8AQM9LWM0D4loKWxJek")

    first = await post(gateway.url(hook_id), body, headers)
    second = await post(gateway.url(hook_id), body, headers)
    assert first[0] == 202
    assert second[0] == 202

    marker = b'{"test": "marker"}'
    assert (await post(gateway.url(hook_id), marker, standard_headers(marker, secret, "msg_marker")))[0] == 202
    await wait_for_messages(deployment, "rita", 2, timeout_s=30)
    await asyncio.sleep(1)
    assert sorted(row["content"] for row in await messages_of(deployment, "rita")) == [
        "Test value 2432232314",
        "Test value marker",
    ]
    assert len(await deployment.read_topic(deployment.topics.webhooks)) == 3
    listing = deployment.cli("hooks", "list", "--user", "rita").stdout
    assert hook_id in listing
    assert secret not in listing


async def test_rejections_publish_nothing(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    await github_hook(deployment, "rex", "gh-rex-0001", "{head}")
    url = gateway.url("gh-rex-0001")
    body = b'{"head": "x"}'
    good = github_headers(body, GITHUB_SECRET, "d-1")
    digest = good["X-Hub-Signature-256"].removeprefix("sha256=")

    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("unknown hook", body, good, 404, "hook_not_found"),
        ("missing signature", body, {**good, "X-Hub-Signature-256": ""}, 401, "missing_signature"),
        ("no prefix", body, {**good, "X-Hub-Signature-256": digest}, 401, "invalid_signature"),
        (
            "truncated",
            body,
            {**good, "X-Hub-Signature-256": good["X-Hub-Signature-256"][:-1]},
            401,
            "invalid_signature",
        ),
        ("wrong length", body, {**good, "X-Hub-Signature-256": f"sha256={digest}ab"}, 401, "invalid_signature"),
        ("wrong prefix", body, {**good, "X-Hub-Signature-256": f"sha1={digest}"}, 401, "invalid_signature"),
        ("other body", b'{"head": "y"}', good, 401, "invalid_signature"),
        ("not json", b"head=x", github_headers(b"head=x", GITHUB_SECRET, "d-2"), 400, "invalid_json"),
        ("no delivery id", body, {**good, "X-GitHub-Delivery": ""}, 400, "missing_delivery_id"),
    ]
    oversized = b'{"head": "' + b"x" * (MAX_BODY_BYTES - 11) + b'"}'
    exact = oversized[:-3] + b'"}'
    assert len(oversized) == MAX_BODY_BYTES + 1
    assert len(exact) == MAX_BODY_BYTES
    cases.append(("one byte over", oversized, github_headers(oversized, GITHUB_SECRET, "d-3"), 413, "body_too_large"))
    for name, payload, headers, status, code in cases:
        target = gateway.url("gh-unknown-1") if name == "unknown hook" else url
        got_status, answer, _ = await post(target, payload, headers)
        assert (name, got_status) == (name, status)
        assert answer["error"] == code, name
        assert answer["message"], name

    status, _, _ = await post(url, exact, github_headers(exact, GITHUB_SECRET, "d-exact"))
    assert status == 202

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 100 + 1):
            yield b"x" * 100

    async with aiohttp.ClientSession() as session, session.post(url, data=chunks(), headers=good) as response:
        assert response.status == 413
        assert (await response.json())["error"] == "body_too_large"

    deployment.cli("hooks", "disable", "--user", "rex", "--id", "gh-rex-0001")
    await wait_for_hook(deployment, "gh-rex-0001", enabled=False)
    await asyncio.sleep(0.5)
    status, answer, _ = await post(url, body, github_headers(body, GITHUB_SECRET, "d-4"))
    assert (status, answer["error"]) == (410, "hook_disabled")

    records = await deployment.read_topic(deployment.topics.webhooks)
    assert [orjson.loads(record.value)["delivery_id"] for record in records] == ["d-exact"]
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.base_url}/metrics") as response:
        exposition = await response.text()
    assert 'luna_webhook_requests_total{code="invalid_signature",hook="gh-rex-0001"} 5.0' in exposition
    assert 'luna_webhook_requests_total{code="hook_not_found",hook="unknown"} 1.0' in exposition
    assert 'luna_webhook_requests_total{code="body_too_large",hook="gh-rex-0001"} 2.0' in exposition
    log = gateway.log_text()
    assert GITHUB_SECRET not in log
    assert '"head"' not in log


async def test_stale_and_future_timestamps_rejected(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    printed = create_hook(deployment, "tim", "--id", "sw-tim-0001", "--name", "Standard", "--template", "{a}")
    await wait_for_hook(deployment, "sw-tim-0001")
    body = b'{"a": 1}'
    now = int(time.time())
    for offset_s, code in ((-301, "timestamp_out_of_tolerance"), (301, "timestamp_out_of_tolerance")):
        headers = standard_headers(body, printed["secret"], "msg_1", timestamp=now + offset_s)
        status, answer, _ = await post(gateway.url("sw-tim-0001"), body, headers)
        assert (status, answer["error"]) == (401, code)
    headers = standard_headers(body, printed["secret"], "msg_1")
    headers["webhook-timestamp"] = "yesterday"
    status, answer, _ = await post(gateway.url("sw-tim-0001"), body, headers)
    assert (status, answer["error"]) == (401, "invalid_timestamp")
    del headers["webhook-timestamp"]
    status, answer, _ = await post(gateway.url("sw-tim-0001"), body, headers)
    assert (status, answer["error"]) == (401, "missing_timestamp")
    assert await deployment.read_topic(deployment.topics.webhooks) == []


async def test_rate_limit_answers_429(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    start_worker(deployment).start()
    gateway = GatewayProcess(deployment, LUNA_WEBHOOK_RATE_PER_S="0.2", LUNA_WEBHOOK_BURST="2").start()
    try:
        create_hook(deployment, "ria", "--id", "open-ria-01", "--name", "Open", "--scheme", "none", "--template", "{n}")
        await wait_for_hook(deployment, "open-ria-01")
        statuses = []
        for number in range(3):
            body = orjson.dumps({"n": number})
            status, answer, headers = await post(gateway.url("open-ria-01"), body, {"Content-Type": "application/json"})
            statuses.append(status)
        assert statuses == [202, 202, 429]
        assert answer["error"] == "rate_limited"
        assert 1 <= int(headers["Retry-After"]) <= 5
    finally:
        gateway.stop()
    assert len(await deployment.read_topic(deployment.topics.webhooks)) == 2


async def test_secret_rotation_grace_period(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    await github_hook(deployment, "ross", "gh-ross-001", "{head}")
    result = deployment.cli("hooks", "rotate", "--user", "ross", "--id", "gh-ross-001", "--grace-s", "4")
    new_secret = next(line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("secret: "))
    rotated_at = time.monotonic()
    await wait_until(
        lambda: deployment.fetch("SELECT definition FROM webhook_hooks WHERE hook_id = 'gh-ross-001'"),
        lambda rows: len(orjson.loads(rows[0]["definition"])["secrets"]) == 2,
        timeout_s=30,
    )
    await asyncio.sleep(0.5)
    url = gateway.url("gh-ross-001")

    old = b'{"head": "old secret in grace"}'
    assert (await post(url, old, github_headers(old, GITHUB_SECRET, "r-1")))[0] == 202
    new = b'{"head": "new secret"}'
    assert (await post(url, new, github_headers(new, new_secret, "r-2")))[0] == 202

    await asyncio.sleep(max(0.0, 4.5 - (time.monotonic() - rotated_at)))
    late = b'{"head": "old secret after grace"}'
    status, answer, _ = await post(url, late, github_headers(late, GITHUB_SECRET, "r-3"))
    assert (status, answer["error"]) == (401, "invalid_signature")
    assert (await post(url, new, github_headers(new, new_secret, "r-4")))[0] == 202

    rows = await wait_for_messages(deployment, "ross", 3, timeout_s=30)
    assert sorted(row["content"] for row in rows) == ["new secret", "new secret", "old secret in grace"]


async def test_bad_records_do_not_stop_agent(
    deployment: Deployment, start_worker: type[WorkerProcess], gateway: GatewayProcess
) -> None:
    start_worker(deployment).start()
    await github_hook(deployment, "bea", "gh-bea-0001", "Pushed {missing_field}")
    body = b'{"head": "x"}'
    assert (await post(gateway.url("gh-bea-0001"), body, github_headers(body, GITHUB_SECRET, "b-1")))[0] == 202

    async with EventProducer(deployment.stack.bootstrap, deployment.prefix) as producer:
        await producer.send_raw(deployment.topics.webhooks, b"bea", b"{not json")

    history = await wait_until(
        lambda: history_of(deployment, "bea"), lambda rows: any(r["status"] == "failed" for r in rows), timeout_s=30
    )
    failed = [row for row in history if row["status"] == "failed"]
    assert failed[0]["reason"] == "render_error"
    assert failed[0]["error"] == "template field {missing_field} is missing from the record"
    letters = await wait_until(
        lambda: deployment.read_topic(deployment.topics.dead_letters), lambda records: len(records) == 1, timeout_s=30
    )
    letter = orjson.loads(letters[0].value)
    assert letter["error_code"] == "malformed_json"
    assert letter["stage"] == "webhooks"
    assert await messages_of(deployment, "bea") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--secret", "v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "error [invalid_webhook_secret]:"),
        (["--secret", "whsec_not base64!"], "error [invalid_webhook_secret]:"),
        (["--scheme", "stripe", "--secret", "sk_live_abcdefghijklmnop"], "error [invalid_webhook_secret]:"),
        (["--scheme", "github", "--secret", "short"], "error [invalid_webhook_secret]:"),
        (["--scheme", "none", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "error [invalid_hook]:"),
        (["--template", "{unclosed"], "error [invalid_hook]:"),
    ],
)
async def test_bad_hook_rejected_at_creation(deployment: Deployment, options: list[str], message: str) -> None:
    arguments = ["--name", "h", "--template", "{x}", *options]
    result = deployment.cli("hooks", "create", "--user", "ivy", *arguments, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in result.stderr
    assert await deployment.read_topic(deployment.topics.commands) == []
