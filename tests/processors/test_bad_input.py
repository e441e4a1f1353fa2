"""Poison records go to the dead-letter topic; the partition keeps flowing."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson

from schemas.serialization import dumps
from streams.emit import EventProducer
from tests.helpers import event, free_port, wait_for_messages, wait_for_trigger
from tests.stack import Deployment, WorkerProcess, wait_until


async def test_poison_between_good_records(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "mia",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "mia", "tasks")

    activity = deployment.topics.activity
    good = [event("mia", "task.completed", {"task_id": str(i), "title": f"good {i}"}) for i in range(3)]
    wrong_version = orjson.loads(dumps(good[0]))
    wrong_version["schema_version"] = 2
    wrong_data = orjson.loads(dumps(good[0]))
    wrong_data["data"] = {"task_id": "x"}
    # Same key, so every record lands on one partition, in this order.
    await producer.send_raw(activity, b"mia", dumps(good[0]))
    await producer.send_raw(activity, b"mia", b"{not json")
    await producer.send_raw(activity, b"mia", dumps(good[1]))
    await producer.send_raw(activity, b"mia", orjson.dumps(wrong_version))
    await producer.send_raw(activity, b"mia", b"\xff\xfe binary")
    await producer.send_raw(activity, b"mia", orjson.dumps(wrong_data))
    await producer.send_raw(activity, b"mia", dumps(good[2]))

    rows = await wait_for_messages(deployment, "mia", 3)
    assert [row["content"] for row in rows] == ["good 0", "good 1", "good 2"]

    letters = await wait_until(
        lambda: deployment.read_topic(deployment.topics.dead_letters), lambda records: len(records) >= 4
    )
    decoded = [orjson.loads(record.value) for record in letters]
    assert [letter["error_code"] for letter in decoded] == [
        "malformed_json",
        "unsupported_schema_version",
        "malformed_json",
        "invalid_event_data",
    ]
    partition = decoded[0]["partition"]
    assert all(letter["topic"] == activity and letter["partition"] == partition for letter in decoded)
    assert [letter["offset"] for letter in decoded] == [1, 3, 4, 5]
    assert decoded[0]["value"] == "{not json"
    assert decoded[2]["value_encoding"] == "base64"
    assert all(letter["stage"] == "match" for letter in decoded)

    shown = deployment.cli("dead-letters")
    assert shown.stdout.count('"error_code"') == 4


async def test_bad_command_dead_lettered(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    await producer.send_raw(deployment.topics.commands, b"nia", b'{"action": "upsert"}')
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "nia",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "nia", "tasks")
    letters = await wait_until(
        lambda: deployment.read_topic(deployment.topics.dead_letters), lambda records: len(records) >= 1
    )
    letter = orjson.loads(letters[0].value)
    assert letter["error_code"] == "invalid_command"
    assert letter["topic"] == deployment.topics.commands
    assert "command_id: Field required" in letter["error"]


async def test_unmatched_event_counted_not_error(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    port = free_port()
    start_worker(deployment, LUNA_WORKER_METRICS_PORT=str(port)).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "oli",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "oli", "tasks")
    await producer.emit(event("oli", "habit.streak", {"days": 3}))
    await producer.emit(event("oli", "task.completed", {"task_id": "1", "title": "after"}))
    await wait_for_messages(deployment, "oli", 1)

    body = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
    assert 'luna_events_consumed_total{matched="no"} 1.0' in body
    assert 'luna_events_consumed_total{matched="yes"} 1.0' in body
    assert "luna_dead_letters_total{" not in body
    assert await deployment.read_topic(deployment.topics.dead_letters) == []


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())
