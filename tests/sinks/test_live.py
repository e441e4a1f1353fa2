"""Live events over SSE: a real worker, two gateways, the broker and the database."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from schemas.live import LiveEvent
from streams.emit import EventProducer
from streams.tokens import mint_token
from tests.helpers import event, free_port, wait_for_messages, wait_for_trigger
from tests.sse_client import SseClient
from tests.stack import Deployment, GatewayProcess, WorkerProcess, wait_until

TOKEN_KEY = "test-live-token-key"
RETRY_FRAME = b"retry: 3000\n\n"


def token(user_id: str, ttl_s: int = 300, now_s: float | None = None) -> str:
    return mint_token(TOKEN_KEY.encode(), user_id, ttl_s, now_s)


async def live_records(deployment: Deployment, user_id: str) -> list[Any]:
    records = await deployment.read_topic(deployment.topics.live)
    return sorted((r for r in records if r.key == user_id.encode()), key=lambda r: r.offset)


def expected_frame(record: Any) -> bytes:
    value = orjson.loads(record.value)
    data = orjson.dumps(value["data"]).decode()
    return f"id: {record.partition}-{record.offset}\nevent: {value['type']}\ndata: {data}\n\n".encode()


async def connections(gateway: GatewayProcess) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("luna_live_connections "):
                return float(line.split()[1])
    raise AssertionError("luna_live_connections missing from /metrics")


async def test_live_frames_reach_each_tab_once(
    deployment: Deployment,
    start_worker: type[WorkerProcess],
    start_gateway: type[GatewayProcess],
    producer: EventProducer,
) -> None:
    deployment.extra_env["LUNA_LIVE_TOKEN_KEY"] = TOKEN_KEY
    start_worker(deployment).start()
    first = start_gateway(deployment, free_port(), name="gateway-1").start()
    second = start_gateway(deployment, free_port(), name="gateway-2").start()
    for user_id in ("alice", "bob"):
        deployment.cli(
            "triggers", "create", "--user", user_id, "--id", "tasks", "--event", "task.completed",
            "--channels", "chat,live", "--template", "Done: {title}",
        )  # fmt: skip
        await wait_for_trigger(deployment, user_id, "tasks")

    tab_one = await SseClient(first.url, token("alice")).__aenter__()
    tab_two = await SseClient(second.url, token("alice")).__aenter__()
    async with SseClient(first.url, token("bob")) as bob_tab:
        # Headers and the opening retry field, exactly.
        assert tab_one.response is not None
        assert tab_one.response.status == 200
        assert tab_one.response.headers["Content-Type"] == "text/event-stream"
        assert tab_one.response.headers["Cache-Control"] == "no-cache"
        assert tab_one.response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in tab_one.response.headers
        for tab in (tab_one, tab_two, bob_tab):
            assert await tab.frames(1) == [RETRY_FRAME]

        # One event reaches both of alice's tabs once, and not bob.
        await producer.emit(event("alice", "task.completed", {"task_id": "1", "title": "Write report"}))
        [frame_one] = await tab_one.frames(1)
        [frame_two] = await tab_two.frames(1)
        [record] = await live_records(deployment, "alice")
        assert frame_one == expected_frame(record)
        assert frame_two == frame_one
        [message] = await wait_for_messages(deployment, "alice", 1)
        data = orjson.loads(record.value)["data"]
        assert data["preview"] == "Done: Write report"
        assert data["session_id"] == str(message["session_id"])
        assert data["occurrence_id"] == message["occurrence_id"]
        await bob_tab.nothing_more(1.0)

        await producer.emit(event("bob", "task.completed", {"task_id": "2", "title": "Bob's task"}))
        [bob_frame] = await bob_tab.frames(1)
        [bob_record] = await live_records(deployment, "bob")
        assert bob_frame == expected_frame(bob_record)
        await tab_one.nothing_more(0.5)
        await tab_two.nothing_more(0.5)

        # Tab one goes away and misses two events, then resumes on the other gateway.
        last_id = f"{record.partition}-{record.offset}"
        await tab_one.close()
        await wait_until(lambda: connections(first), lambda count: count == 1, timeout_s=10)
        for number in (3, 4):
            await producer.emit(event("alice", "task.completed", {"task_id": str(number), "title": f"Task {number}"}))
        missed = await tab_two.frames(2)
        records = await live_records(deployment, "alice")
        assert missed == [expected_frame(r) for r in records[1:]]
        async with SseClient(second.url, token("alice"), last_event_id=last_id) as resumed:
            assert await resumed.frames(3) == [RETRY_FRAME, *missed]
            await resumed.nothing_more(0.5)
        await tab_two.close()

    # Every closed connection is freed at once.
    await wait_until(lambda: connections(first), lambda count: count == 0, timeout_s=10)
    await wait_until(lambda: connections(second), lambda count: count == 0, timeout_s=10)


async def test_live_auth_unread_and_resync(
    deployment: Deployment, start_gateway: type[GatewayProcess], producer: EventProducer
) -> None:
    gateway = start_gateway(
        deployment, free_port(), LUNA_LIVE_TOKEN_KEY=TOKEN_KEY, LUNA_LIVE_REPLAY_MAX="2", LUNA_LIVE_HEARTBEAT_S="0.5"
    ).start()
    url = f"{gateway.url}/api/triggers/live"

    # Missing, malformed, forged and expired tokens.
    forged = mint_token(b"another-key", "carol", 300)
    tampered = token("carol").rsplit(".", 1)[0] + "." + "A" * 43
    cases = [
        ({}, "token_missing"),
        ({"token": "not-a-token"}, "token_malformed"),
        ({"token": forged}, "token_invalid"),
        ({"token": tampered}, "token_invalid"),
        ({"token": token("carol", ttl_s=10, now_s=time.time() - 60)}, "token_expired"),
    ]
    async with aiohttp.ClientSession() as session:
        for params, code in cases:
            async with session.get(url, params=params) as response:
                assert response.status == 401, code
                body = await response.json()
                assert body["error"] == code
                assert isinstance(body["message"], str)
        async with session.get(f"{gateway.url}/api/triggers/pending/count") as response:
            assert response.status == 401

    # The unread badge counts unread proactive messages only.
    connection = await deployment.connect()
    try:
        session_id = await connection.fetchval(
            "INSERT INTO chat_sessions (user_id, title) VALUES ('carol', 'Chat') RETURNING id"
        )
        ids = [
            str(
                await connection.fetchval(
                    "INSERT INTO chat_messages (session_id, user_id, role, content, occurrence_id) "
                    "VALUES ($1, 'carol', 'assistant', $2, $3) RETURNING id",
                    session_id,
                    f"message {number}",
                    f"occurrence-{number}",
                )
            )
            for number in range(3)
        ]
        await connection.execute(
            "INSERT INTO chat_messages (session_id, user_id, role, content) VALUES ($1, 'carol', 'user', 'hi')",
            session_id,
        )
    finally:
        await connection.close()
    headers = {"Authorization": f"Bearer {token('carol')}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{gateway.url}/api/triggers/pending/count") as response:
            assert await response.json() == {"unread": 3}

        async with SseClient(gateway.url, token("carol")) as tab:
            assert await tab.frames(1) == [RETRY_FRAME]
            async with session.post(f"{gateway.url}/api/triggers/messages/read", json={"message_ids": ids[:1]}) as r:
                assert await r.json() == {"marked": 1, "unread": 2}
            frames = [frame for frame in await tab.frames(3) if not frame.startswith(b":")]
            assert frames[0].endswith(b'\nevent: unread_count\ndata: {"unread":2}\n\n')
            async with session.post(f"{gateway.url}/api/triggers/messages/read", json={"all": True}) as r:
                assert await r.json() == {"marked": 2, "unread": 0}
            async with session.post(f"{gateway.url}/api/triggers/messages/read", json={"message_ids": ["x"]}) as r:
                assert r.status == 400
                assert (await r.json())["error"] == "invalid_message_id"
            # Heartbeats keep an idle stream open.
            [heartbeat] = [frame for frame in await tab.frames(2) if frame.startswith(b":")][:1]
            assert heartbeat == b": heartbeat\n\n"

    # An id older than the replay buffer (two events) gets one resync.
    for number in range(4):
        record = LiveEvent(user_id="dave", type="trigger_status", data={"n": number}, produced_at=datetime.now(UTC))
        await producer.send(deployment.topics.live, "dave", record)
    records = await wait_until(lambda: live_records(deployment, "dave"), lambda found: len(found) == 4)
    ids_on_wire = [f"{r.partition}-{r.offset}" for r in records]
    await wait_until(lambda: _replayed(gateway.url, ids_on_wire[2]), lambda frames: len(frames) == 1, timeout_s=10)
    async with SseClient(gateway.url, token("dave"), last_event_id=ids_on_wire[0]) as stale:
        [_, resync] = await stale.frames(2)
        assert resync == f"id: {ids_on_wire[3]}\nevent: resync\ndata: {{}}\n\n".encode()
    async with SseClient(gateway.url, token("dave"), last_event_id="not-an-id") as unknown:
        [_, resync] = await unknown.frames(2)
        assert b"event: resync\n" in resync
    assert await _replayed(gateway.url, ids_on_wire[2]) == [expected_frame(records[3])]


async def _replayed(url: str, last_event_id: str) -> list[bytes]:
    """Return the frames a client resuming after ``last_event_id`` gets at once."""
    async with SseClient(url, token("dave"), last_event_id=last_event_id) as client:
        frames = await client.frames(1)
        try:
            frames += await client.frames(1, timeout_s=0.4)
        except AssertionError:
            pass
        return [frame for frame in frames[1:] if not frame.startswith(b":")]
