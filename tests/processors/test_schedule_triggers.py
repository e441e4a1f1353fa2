"""Reminders and cron schedules to chat messages, including restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from tests.helpers import history_of, messages_of, wait_for_messages, wait_for_trigger
from tests.stack import Deployment, WorkerProcess, wait_until


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_reminder_fires_once(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    start_worker(deployment).start()
    at = in_seconds(4)
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "gus",
        "--id",
        "call-mom",
        "--name",
        "call mom",
        "--at",
        at,
        "--template",
        "Time to {trigger_name} ({local_time} UTC)",
    )
    await wait_for_trigger(deployment, "gus", "call-mom")

    rows = await wait_for_messages(deployment, "gus", 1, timeout_s=30)
    assert rows[0]["content"] == f"Time to call mom ({at[11:16]} UTC)"
    metadata = orjson.loads(rows[0]["metadata"])
    assert metadata["source"] == "schedule"
    assert metadata["occurrence_id"] == f"schedule:gus:call-mom:{at}"
    await asyncio.sleep(3)
    assert len(await messages_of(deployment, "gus")) == 1


async def test_reminder_in_local_zone(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    start_worker(deployment).start()
    zone_now = datetime.now(UTC).astimezone(ZoneInfo("America/New_York"))
    local_at = (zone_now + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%S")
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "hana",
        "--id",
        "r",
        "--at",
        local_at,
        "--timezone",
        "America/New_York",
        "--template",
        "It is {local_time} in New York",
    )
    rows = await wait_for_messages(deployment, "hana", 1, timeout_s=30)
    assert rows[0]["content"] == f"It is {local_at[11:16]} in New York"


async def test_due_while_down_fires_after_restart(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    worker = start_worker(deployment).start()
    deployment.cli("triggers", "create", "--user", "ivy", "--id", "r", "--at", in_seconds(4), "--template", "late")
    await wait_for_trigger(deployment, "ivy", "r")
    worker.stop()

    await asyncio.sleep(6)
    start_worker(deployment).start()
    rows = await wait_for_messages(deployment, "ivy", 1, timeout_s=30)
    assert [row["content"] for row in rows] == ["late"]
    await asyncio.sleep(2)
    assert len(await messages_of(deployment, "ivy")) == 1


async def test_too_late_is_recorded_missed(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    worker = start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "jon",
        "--id",
        "r",
        "--at",
        in_seconds(3),
        "--max-lateness-s",
        "1",
        "--template",
        "too late",
    )
    await wait_for_trigger(deployment, "jon", "r")
    worker.stop()

    await asyncio.sleep(6)
    start_worker(deployment).start()
    history = await wait_until(
        lambda: history_of(deployment, "jon"), lambda rows: any(r["status"] == "missed" for r in rows), 30
    )
    missed = [row for row in history if row["status"] == "missed"]
    assert len(missed) == 1
    assert missed[0]["reason"] == "missed_while_down"
    assert orjson.loads(missed[0]["summary"])["missed_count"] == 1
    assert await messages_of(deployment, "jon") == []


async def test_fired_reminder_not_repeated_after_restart(
    deployment: Deployment, start_worker: type[WorkerProcess]
) -> None:
    worker = start_worker(deployment).start()
    deployment.cli("triggers", "create", "--user", "kim", "--id", "r", "--at", in_seconds(3), "--template", "once")
    await wait_for_messages(deployment, "kim", 1, timeout_s=30)
    await asyncio.sleep(1.5)
    worker.stop()

    # The schedule state restored from the changelog records the run as done.
    restarted = start_worker(deployment).start()
    restarted.wait_for_log("schedule heap rebuilt", timeout_s=30)
    await asyncio.sleep(3)
    assert len(await messages_of(deployment, "kim")) == 1


async def test_cron_schedule_fires_on_minute(deployment: Deployment, start_worker: type[WorkerProcess]) -> None:
    start_worker(deployment).start()
    deployment.cli(
        "triggers",
        "create",
        "--user",
        "lea",
        "--id",
        "every-minute",
        "--cron",
        "* * * * *",
        "--timezone",
        "Asia/Kolkata",
        "--template",
        "Check-in at {local_time} on {weekday}",
    )
    rows = await wait_for_messages(deployment, "lea", 1, timeout_s=90)
    occurrence = rows[0]["occurrence_id"]
    assert occurrence.startswith("schedule:lea:every-minute:")
    assert occurrence.endswith(":00Z")
    fired_at = datetime.strptime(occurrence.removeprefix("schedule:lea:every-minute:"), "%Y-%m-%dT%H:%M:%SZ")
    local = fired_at.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))
    assert rows[0]["content"] == f"Check-in at {local:%H:%M} on {local:%A}"
