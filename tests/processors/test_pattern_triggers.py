"""Pattern triggers through real workers: restarts, a second worker, absence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from schemas.events import make_event
from streams.emit import EventProducer
from tests.helpers import history_of, messages_of, wait_for_messages, wait_for_trigger
from tests.stack import Deployment, WorkerProcess, wait_until


def task_event(user_id: str, number: int, occurred_at: datetime) -> object:
    return make_event(
        event_id=f"{user_id}-task-{number}",
        event_type="task.completed",
        user_id=user_id,
        occurred_at=occurred_at,
        source="tests",
        data={"task_id": str(number), "title": f"task {number}"},
    )


def create_productivity(deployment: Deployment, user_id: str) -> None:
    deployment.cli(
        "triggers",
        "create",
        "--user",
        user_id,
        "--id",
        "busy-day",
        "--pattern",
        '{"detector": "high_productivity", "tasks": 5}',
        "--timezone",
        "Europe/Berlin",
        "--template",
        "{count} tasks done on {local_date}. What a day!",
    )


async def test_productivity_survives_restart(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    worker = start_worker(deployment).start()
    create_productivity(deployment, "rosa")
    await wait_for_trigger(deployment, "rosa", "busy-day")
    now = datetime.now(UTC)
    for number in range(3):
        await producer.emit(task_event("rosa", number, now + timedelta(seconds=number)))
    # Give the worker time to fold the three tasks into its table.
    await asyncio.sleep(2)
    worker.stop()

    start_worker(deployment).start()
    for number in range(3, 7):
        await producer.emit(task_event("rosa", number, now + timedelta(seconds=number)))
    rows = await wait_for_messages(deployment, "rosa", 1)
    local_date = now.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    assert rows[0]["content"] == f"5 tasks done on {local_date}. What a day!"
    await asyncio.sleep(2)
    assert len(await messages_of(deployment, "rosa")) == 1

    history = await wait_until(
        lambda: history_of(deployment, "rosa"), lambda rows: any(r["status"] == "delivered" for r in rows)
    )
    summary = orjson.loads(next(r for r in history if r["status"] == "delivered")["summary"])
    assert summary["detector"] == "high_productivity"
    assert summary["evidence"] == {"tasks_completed": 5, "local_date": local_date, "threshold": 5}


async def test_second_worker_mid_stream(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    users = [f"sam-{number}" for number in range(6)]
    first = start_worker(deployment, name="first").start()
    for user in users:
        create_productivity(deployment, user)
    for user in users:
        await wait_for_trigger(deployment, user, "busy-day")
    now = datetime.now(UTC)
    for user in users:
        for number in range(3):
            await producer.emit(task_event(user, number, now + timedelta(seconds=number)))

    second = start_worker(deployment, name="second").start()
    first.wait_for_log("schedule heap rebuilt", timeout_s=60, count=2)
    for user in users:
        for number in range(3, 8):
            await producer.emit(task_event(user, number, now + timedelta(seconds=number)))

    for user in users:
        await wait_for_messages(deployment, user, 1)
    await asyncio.sleep(3)
    for user in users:
        assert len(await messages_of(deployment, user)) == 1, user
    assert "schedule heap rebuilt" in second.log_text()


async def test_absence_without_any_event(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    start_worker(deployment, LUNA_ABSENCE_CHECK_INTERVAL_S="0.5").start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "tom",
        "--id",
        "miss-you",
        "--pattern",
        '{"detector": "long_absence", "absence_s": 3}',
        "--template",
        "It has been quiet since {last_seen}. How are you?",
    )
    rows = await wait_for_messages(deployment, "tom", 1, timeout_s=30)
    assert rows[0]["content"].startswith("It has been quiet since ")
    await asyncio.sleep(4)
    assert len(await messages_of(deployment, "tom")) == 1


async def test_absence_rearms_after_return(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment, LUNA_ABSENCE_CHECK_INTERVAL_S="0.5").start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "uma",
        "--id",
        "miss-you",
        "--pattern",
        '{"detector": "long_absence", "absence_s": 3}',
        "--template",
        "Missed you",
    )
    await wait_for_messages(deployment, "uma", 1, timeout_s=30)
    await producer.emit(task_event("uma", 1, datetime.now(UTC)))
    rows = await wait_for_messages(deployment, "uma", 2, timeout_s=30)
    assert len({row["occurrence_id"] for row in rows}) == 2
    await asyncio.sleep(4)
    assert len(await messages_of(deployment, "uma")) == 2


async def test_late_event_left_out(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment, LUNA_PATTERN_ALLOWED_LATENESS_S="60").start()
    create_productivity(deployment, "vic")
    await wait_for_trigger(deployment, "vic", "busy-day")
    now = datetime.now(UTC)
    await producer.emit(task_event("vic", 0, now))
    # 61 s behind the newest event: late, so it must not count as the 5th task.
    await producer.emit(task_event("vic", 1, now - timedelta(seconds=61)))
    for number in range(2, 5):
        await producer.emit(task_event("vic", number, now + timedelta(seconds=number)))
    await asyncio.sleep(3)
    assert await messages_of(deployment, "vic") == []

    await producer.emit(task_event("vic", 5, now + timedelta(seconds=5)))
    rows = await wait_for_messages(deployment, "vic", 1)
    assert rows[0]["content"].startswith("5 tasks done")
