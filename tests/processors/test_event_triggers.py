"""Domain events to chat messages, through a real worker, broker and database."""

from __future__ import annotations

import asyncio

import orjson

from sinks.db import create_pool
from streams.emit import EventProducer
from tests.helpers import event, history_of, messages_of, wait_for_messages, wait_for_trigger
from tests.stack import Deployment, WorkerProcess, wait_until


async def test_task_completed_reaches_chat(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "alice",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        'Nice work finishing "{title}"!',
    )
    await wait_for_trigger(deployment, "alice", "tasks")

    sent = event("alice", "task.completed", {"task_id": "t1", "title": "Write report"})
    await producer.emit(sent)

    rows = await wait_for_messages(deployment, "alice", 1)
    assert [row["content"] for row in rows] == ['Nice work finishing "Write report"!']
    assert rows[0]["title"] == "Luna Updates"
    assert rows[0]["kind"] == "luna_updates"
    metadata = orjson.loads(rows[0]["metadata"])
    assert metadata["proactive"] is True
    assert metadata["trigger_id"] == "tasks"
    assert metadata["source"] == "event"
    assert metadata["occurrence_id"] == f"event:alice:{sent.id}:tasks"

    history = await wait_until(
        lambda: history_of(deployment, "alice"), lambda rows: any(r["status"] == "delivered" for r in rows)
    )
    delivered = [row for row in history if row["status"] == "delivered"]
    assert len(delivered) == 1
    assert orjson.loads(delivered[0]["summary"])["title"] == "Write report"


async def test_conditions_select_events(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "bob",
        "--id",
        "milestones",
        "--event",
        "goal.progress",
        "--where",
        "milestone exists",
        "--template",
        "Milestone reached: {milestone} on {title}",
    )
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "bob",
        "--id",
        "insights",
        "--event",
        "insight.created",
        "--where",
        "priority>=7",
        "--template",
        "New insight: {title}",
    )
    await wait_for_trigger(deployment, "bob", "milestones")
    await wait_for_trigger(deployment, "bob", "insights")

    await producer.emit(event("bob", "goal.progress", {"goal_id": "g", "title": "Run 5k", "progress": 0.4}))
    await producer.emit(
        event("bob", "goal.progress", {"goal_id": "g", "title": "Run 5k", "progress": 0.5, "milestone": "halfway"})
    )
    await producer.emit(event("bob", "insight.created", {"insight_id": "i1", "title": "Low", "priority": 6}))
    await producer.emit(event("bob", "insight.created", {"insight_id": "i2", "title": "Sleep better", "priority": 7}))
    # A later marker proves the earlier, non-matching events were processed too.
    await producer.emit(event("bob", "insight.created", {"insight_id": "i3", "title": "Marker", "priority": 10}))

    rows = await wait_for_messages(deployment, "bob", 3)
    await asyncio.sleep(1)
    rows = await messages_of(deployment, "bob")
    assert sorted(row["content"] for row in rows) == [
        "Milestone reached: halfway on Run 5k",
        "New insight: Marker",
        "New insight: Sleep better",
    ]


async def test_same_event_twice_gives_one_message(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "carol",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "carol", "tasks")

    duplicate = event("carol", "task.completed", {"task_id": "1", "title": "first"}, event_id="evt-dup")
    await producer.emit(duplicate)
    await producer.emit(duplicate)
    await producer.emit(event("carol", "task.completed", {"task_id": "2", "title": "second"}))

    await wait_for_messages(deployment, "carol", 2)
    await asyncio.sleep(1)
    assert [row["content"] for row in await messages_of(deployment, "carol")] == ["first", "second"]


async def test_render_error_recorded_not_crash(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "dan",
        "--id",
        "mail",
        "--event",
        "email.received",
        "--template",
        'Email from {from}: "{subject}" ({folder})',
    )
    await wait_for_trigger(deployment, "dan", "mail")

    await producer.emit(event("dan", "email.received", {"from": "Ana", "subject": "Lunch?"}))
    await producer.emit(event("dan", "email.received", {"from": "Ben", "subject": "Hi", "folder": "inbox"}))

    rows = await wait_for_messages(deployment, "dan", 1)
    assert [row["content"] for row in rows] == ['Email from Ben: "Hi" (inbox)']
    history = await wait_until(
        lambda: history_of(deployment, "dan"), lambda rows: any(r["status"] == "failed" for r in rows)
    )
    failed = [row for row in history if row["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["reason"] == "render_error"
    assert failed[0]["error"] == "template field {folder} is missing from the record"


async def test_named_session_and_fallback(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    pool = await create_pool(deployment.settings())
    await pool.close()
    connection = await deployment.connect()
    try:
        session_id = await connection.fetchval(
            "INSERT INTO chat_sessions (user_id, title) VALUES ('erin', 'Fitness') RETURNING id::text"
        )
    finally:
        await connection.close()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "erin",
        "--id",
        "fit",
        "--event",
        "goal.progress",
        "--session",
        session_id,
        "--template",
        "{title} at {progress}",
    )
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "erin",
        "--id",
        "gone",
        "--event",
        "task.completed",
        "--session",
        "00000000-0000-0000-0000-000000000000",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "erin", "fit")
    await wait_for_trigger(deployment, "erin", "gone")

    await producer.emit(event("erin", "goal.progress", {"goal_id": "g", "title": "Run", "progress": 0.5}))
    await producer.emit(event("erin", "task.completed", {"task_id": "1", "title": "Stretch"}))

    rows = await wait_for_messages(deployment, "erin", 2)
    by_content = {row["content"]: row for row in rows}
    assert by_content["Run at 0.5"]["title"] == "Fitness"
    assert by_content["Stretch"]["title"] == "Luna Updates"
    history = await wait_until(
        lambda: history_of(deployment, "erin"),
        lambda rows: any(r["reason"] == "session_not_found_used_updates" for r in rows),
    )
    assert sum(r["reason"] == "session_not_found_used_updates" for r in history) == 1


async def test_disable_enable_delete(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "finn",
        "--id",
        "tasks",
        "--event",
        "task.completed",
        "--template",
        "{title}",
    )
    await wait_for_trigger(deployment, "finn", "tasks")

    deployment.cli("triggers", "disable", "--user", "finn", "--id", "tasks")
    await wait_until(
        lambda: deployment.fetch("SELECT enabled FROM triggers WHERE user_id = 'finn'"),
        lambda rows: rows and rows[0]["enabled"] is False,
    )
    await producer.emit(event("finn", "task.completed", {"task_id": "1", "title": "while disabled"}))
    deployment.cli("triggers", "enable", "--user", "finn", "--id", "tasks")
    await producer.emit(event("finn", "task.completed", {"task_id": "2", "title": "after enable"}))

    await wait_for_messages(deployment, "finn", 1)
    deployment.cli("triggers", "delete", "--user", "finn", "--id", "tasks")
    await wait_until(lambda: deployment.fetch("SELECT 1 FROM triggers WHERE user_id = 'finn'"), lambda rows: not rows)
    await producer.emit(event("finn", "task.completed", {"task_id": "3", "title": "after delete"}))
    await asyncio.sleep(2)
    assert [row["content"] for row in await messages_of(deployment, "finn")] == ["after enable"]
    listing = deployment.cli("triggers", "list", "--user", "finn")
    assert listing.stdout.strip() == "no triggers for user finn"
