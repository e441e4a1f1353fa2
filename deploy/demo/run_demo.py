"""Run the main job on the bundled demo input and print what each user received.

1. Start the local Kafka and PostgreSQL unless they already run.
2. Create a fresh deployment (topic prefix and schema) and its topics.
3. Start a worker and a gateway on loopback.
4. Publish the demo triggers, then the domain events and one malformed record.
5. Wait for the expected chat messages, print them per user with the next
   morning check-in, the live frames one open tab per user received, the
   pushes a local push service decrypted, the history and the dead letters.
6. Stop everything this script started, by pid.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from schemas.cron import load_zone, next_fire, parse_cron  # noqa: E402
from schemas.events import make_event  # noqa: E402
from schemas.triggers import TriggerCommand, parse_trigger  # noqa: E402
from streams.admin import create_topics  # noqa: E402
from streams.deadletters import read_dead_letters  # noqa: E402
from streams.emit import EventProducer  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.tokens import mint_token  # noqa: E402
from tests.push_service import LocalPushService  # noqa: E402
from tests.sse_client import SseClient  # noqa: E402

INPUT = Path(__file__).with_name("input.json")
STACK = ROOT / "deploy" / "local" / "stack.sh"
LOG_DIR = ROOT / ".local" / "demo"
LUNA_BIN = Path(sys.executable).parent / "luna-triggers"
WAIT_FOR_MESSAGES_S = 120
#: The demo's own token key and push keys; a real deployment sets its own.
DEMO_TOKEN_KEY = uuid.uuid4().hex
DEMO_VAPID_KEY = (
    base64.urlsafe_b64encode(
        ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    )
    .rstrip(b"=")
    .decode()
)


def main() -> int:
    demo = orjson.loads(INPUT.read_bytes())
    started_stack = not _stack_running()
    if started_stack:
        print("starting the local Kafka broker and PostgreSQL ...", flush=True)
        subprocess.run([str(STACK), "up"], check=True, stdout=subprocess.DEVNULL)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        settings = _demo_settings()
        asyncio.run(create_topics(settings))
        env = _process_env(settings)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        print(f"deployment: topics {settings.topic_prefix}*, schema {settings.database_schema}", flush=True)

        worker = _spawn(["worker"], env, "worker.log")
        processes.append(worker)
        gateway_port = _free_port()
        processes.append(_spawn(["gateway"], {**env, "LUNA_GATEWAY_PORT": str(gateway_port)}, "gateway.log"))
        _wait_for_log(LOG_DIR / "worker.log", "Worker]: Ready", worker, timeout_s=90)
        print(f"worker ready; gateway on http://127.0.0.1:{gateway_port}", flush=True)

        return asyncio.run(_run(settings, demo, f"http://127.0.0.1:{gateway_port}"))
    finally:
        for process in processes:
            _stop(process)
        if started_stack:
            subprocess.run([str(STACK), "down"], check=False, stdout=subprocess.DEVNULL)


async def _run(settings: Settings, demo: dict[str, Any], gateway_url: str) -> int:
    zones = {user["user_id"]: user["timezone"] for user in demo["users"]}
    now = datetime.now(UTC)
    definitions = list(_demo_triggers(demo, zones, now))
    expected = _expected_message_count(demo, definitions)
    push_service = await LocalPushService().start()
    tabs = {}
    try:
        for user_id in zones:
            token = mint_token(DEMO_TOKEN_KEY.encode(), user_id, 600)
            tabs[user_id] = await SseClient(gateway_url, token).__aenter__()
            async with (
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session,
                session.post(
                    f"{gateway_url}/api/triggers/push/subscribe", json=push_service.add_device(user_id)
                ) as response,
            ):
                response.raise_for_status()
        print(f"{len(tabs)} live tabs open; one push device per user on {push_service.origin}", flush=True)
        return await _publish_and_report(settings, demo, zones, definitions, expected, tabs, push_service)
    finally:
        for tab in tabs.values():
            await tab.close()
        await push_service.stop()


async def _publish_and_report(
    settings: Settings,
    demo: dict[str, Any],
    zones: dict[str, str],
    definitions: list[Any],
    expected: int,
    tabs: dict[str, SseClient],
    push_service: LocalPushService,
) -> int:
    now = datetime.now(UTC)

    async with EventProducer.from_settings(settings) as producer:
        for definition in definitions:
            await producer.command(
                TriggerCommand(
                    command_id=str(uuid.uuid4()),
                    user_id=definition.user_id,
                    issued_at=now,
                    action="upsert",
                    trigger_id=definition.trigger_id,
                    definition=definition,
                )
            )
        print(f"published {len(definitions)} triggers", flush=True)
        await _wait_for_rows(settings, "SELECT count(*) FROM triggers", len(definitions), 60)

        for number, item in enumerate(demo["events"]):
            await producer.emit(
                make_event(
                    event_id=f"demo-{number}-{uuid.uuid4().hex[:8]}",
                    event_type=item["type"],
                    user_id=item["user_id"],
                    occurred_at=datetime.now(UTC),
                    source=item["source"],
                    data=item["data"],
                )
            )
        for item in demo["malformed_records"]:
            await producer.send_raw(producer.topics.activity, item["user_id"].encode(), item["raw"].encode())
        print(f"emitted {len(demo['events'])} events and {len(demo['malformed_records'])} malformed record", flush=True)

    print(f"waiting for {expected} chat messages (the reminders fire 15-25 s from now) ...", flush=True)
    got = await _wait_for_rows(
        settings, "SELECT count(*) FROM chat_messages WHERE occurrence_id IS NOT NULL", expected, WAIT_FOR_MESSAGES_S
    )
    await _print_report(settings, zones, definitions)
    await _print_live_and_push(tabs, push_service)
    if got != expected:
        print(f"\nFAILED: expected {expected} messages, found {got}; logs in {LOG_DIR}", file=sys.stderr)
        return 1
    print(f"\nall {expected} expected messages delivered; logs in {LOG_DIR}")
    return 0


async def _print_live_and_push(tabs: dict[str, SseClient], push_service: LocalPushService) -> None:
    """Print the SSE bytes each open tab read and the pushes each device decrypted."""
    await asyncio.sleep(2)
    for user_id, tab in tabs.items():
        try:
            await tab.frames(100, timeout_s=0.5)
        except AssertionError:
            pass
        print(f"\n=== live frames received by {user_id}'s tab ===")
        for line in tab.raw.decode().splitlines():
            print(f"  {line}")
    for user_id in tabs:
        print(f"\n=== pushes decrypted by {user_id}'s device ===")
        for payload in push_service.received[user_id]:
            print(f"  {payload.decode()}")


def _demo_triggers(demo: dict[str, Any], zones: dict[str, str], now: datetime) -> list[Any]:
    definitions = []
    for item in demo["triggers"]:
        users = list(zones) if item.get("for_each_user") else [item["user_id"]]
        for user_id in users:
            when = dict(item["when"])
            if when["kind"] == "reminder":
                at = now + timedelta(seconds=when.pop("in_seconds"))
                when["at"] = at.isoformat()
            if when["kind"] != "event":
                when["timezone"] = zones[user_id]
            definitions.append(
                parse_trigger(
                    {
                        "trigger_id": item["trigger_id"],
                        "user_id": user_id,
                        "name": item["name"],
                        "when": when,
                        "template": item["template"],
                        "channels": ["chat", "live", "push"],
                    }
                )
            )
    return definitions


def _expected_message_count(demo: dict[str, Any], definitions: list[Any]) -> int:
    """Reminders plus the events that meet a trigger's conditions."""
    reminders = sum(1 for definition in definitions if definition.when.kind == "reminder")
    matching = 0
    for item in demo["events"]:
        data = item["data"]
        if item["type"] == "task.completed":
            matching += 1
        elif item["type"] == "goal.progress" and data.get("milestone"):
            matching += 1
        elif item["type"] == "insight.created" and data.get("priority", 0) >= 7:
            matching += 1
    return reminders + matching


async def _print_report(settings: Settings, zones: dict[str, str], definitions: list[Any]) -> None:
    connection = await _connect(settings)
    try:
        for user_id, zone in zones.items():
            print(f"\n=== {user_id} ({zone}) ===")
            rows = await connection.fetch(
                """SELECT m.created_at, s.title, m.content, m.metadata FROM chat_messages m
                   JOIN chat_sessions s ON s.id = m.session_id
                   WHERE m.user_id = $1 ORDER BY m.created_at""",
                user_id,
            )
            for row in rows:
                local = row["created_at"].astimezone(load_zone(zone))
                source = orjson.loads(row["metadata"])["source"]
                print(f"  {local:%H:%M:%S} [{row['title']}] ({source}) {row['content']}")
            check_in = next(d for d in definitions if d.user_id == user_id and d.trigger_id == "morning-check-in")
            upcoming = next_fire(parse_cron(check_in.when.cron), load_zone(zone), datetime.now(UTC))
            if upcoming is not None:
                print(f"  next morning check-in: {upcoming.astimezone(load_zone(zone)):%Y-%m-%d %H:%M %Z}")
        counts = await connection.fetch(
            "SELECT stage, status, count(*) AS n FROM trigger_history GROUP BY stage, status ORDER BY stage, status"
        )
        print("\n=== history ===")
        for row in counts:
            print(f"  {row['stage']:<10} {row['status']:<14} {row['n']}")
    finally:
        await connection.close()
    print("\n=== dead letters ===")
    for letter in await read_dead_letters(settings, 10):
        print(
            f"  {letter['topic']}[{letter['partition']}]@{letter['offset']} {letter['error_code']}: {letter['error']}"
        )


async def _connect(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": settings.database_schema}
    )


async def _wait_for_rows(settings: Settings, sql: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        connection = await _connect(settings)
        try:
            count = int(await connection.fetchval(sql))
        except asyncpg.UndefinedTableError:
            count = 0
        finally:
            await connection.close()
        if count >= expected:
            return count
        await asyncio.sleep(0.5)
    return count


def _stack_running() -> bool:
    result = subprocess.run([str(STACK), "status"], capture_output=True, text=True, check=False)
    return "kafka: running" in result.stdout and "postgres: running" in result.stdout


def _demo_settings() -> Settings:
    env: dict[str, str] = {}
    local_dir = Path(os.environ.get("LUNA_LOCAL_DIR") or ROOT / ".local")
    for line in (local_dir / "stack.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    token = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return Settings(
        kafka_bootstrap=env["LUNA_KAFKA_BOOTSTRAP"],
        database_url=env["LUNA_DATABASE_URL"],  # type: ignore[arg-type]
        topic_prefix=f"demo-{token}.",
        database_schema=f"demo_{token}",
        partitions=4,
    )


def _process_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "LUNA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LUNA_DATABASE_URL": settings.database_url.get_secret_value(),
        "LUNA_TOPIC_PREFIX": settings.topic_prefix,
        "LUNA_DATABASE_SCHEMA": settings.database_schema,
        "LUNA_PARTITIONS": str(settings.partitions),
        "LUNA_LIVE_TOKEN_KEY": DEMO_TOKEN_KEY,
        "LUNA_VAPID_PRIVATE_KEY": DEMO_VAPID_KEY,
        "LUNA_PUSH_ALLOWED_TEST_HOSTS": '["127.0.0.1"]',
    }


def _spawn(args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    with (LOG_DIR / log_name).open("wb") as log:
        return subprocess.Popen([str(LUNA_BIN), *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode}; see {path}")
        time.sleep(0.2)
    raise SystemExit(f"the worker was not ready after {timeout_s}s; see {path}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
