"""A worker killed with SIGKILL mid-stream loses and doubles nothing."""

from __future__ import annotations

import asyncio

from streams.emit import EventProducer
from streams.liveness import EXIT_STALLED
from tests.helpers import event, wait_for_trigger
from tests.stack import Deployment, WorkerProcess, wait_until

EVENT_COUNT = 400
SUPERVISED = {"LUNA_STALL_TIMEOUT_S": "30", "LUNA_STALL_CHECK_INTERVAL_S": "1"}
USERS = [f"user-{number}" for number in range(8)]


async def count_messages(deployment: Deployment) -> int:
    rows = await deployment.fetch("SELECT count(*) AS n FROM chat_messages")
    return int(rows[0]["n"]) if rows else 0


async def test_kill_9_mid_stream_exactly_once(
    deployment: Deployment, start_worker: type[WorkerProcess], producer: EventProducer
) -> None:
    worker = start_worker(deployment).start()
    for user in USERS:
        deployment.cli(
            "triggers",
            "create",
            "--user",
            user,
            "--id",
            "tasks",
            "--event",
            "task.completed",
            "--template",
            "{title}",
        )
    for user in USERS:
        await wait_for_trigger(deployment, user, "tasks")

    sent = [
        event(USERS[number % len(USERS)], "task.completed", {"task_id": str(number), "title": f"task {number}"})
        for number in range(EVENT_COUNT)
    ]
    await asyncio.gather(*(producer.emit(item) for item in sent))

    # Kill while the stream is in flight: some messages stored, not all.
    stored = await wait_until(lambda: count_messages(deployment), lambda n: n >= EVENT_COUNT // 10, 60, 0.05)
    worker.kill()
    assert stored < EVENT_COUNT, "the worker finished before it could be killed; raise EVENT_COUNT"

    # The worker runs under a supervisor, as in production: a worker that
    # stalls exits with status 75 and is started again.
    restarted = start_worker(deployment, **SUPERVISED).start()
    restarts = 0

    async def count_supervised() -> int:
        nonlocal restarted, restarts
        if restarted.process is not None and restarted.process.poll() == EXIT_STALLED:
            restarts += 1
            restarted = start_worker(deployment, **SUPERVISED).start()
        return await count_messages(deployment)

    try:
        await wait_until(count_supervised, lambda n: n >= EVENT_COUNT, 180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {restarts} stall restart(s)\n{await deployment.pipeline_report()}") from exc
    await asyncio.sleep(2)

    rows = await deployment.fetch("SELECT content, user_id FROM chat_messages")
    assert len(rows) == EVENT_COUNT
    assert sorted(row["content"] for row in rows) == sorted(f"task {number}" for number in range(EVENT_COUNT))
    delivered = await deployment.fetch(
        "SELECT count(*) AS n FROM trigger_history WHERE stage = 'chat' AND status = 'delivered'"
    )
    assert delivered[0]["n"] == EVENT_COUNT
