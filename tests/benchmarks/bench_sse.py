"""SSE gateway: many concurrent connections, memory per idle connection and
fan-out frames per second, against a minimal aiohttp handler."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from schemas.live import LiveEvent
from schemas.serialization import dumps
from streams.admin import create_topics
from streams.emit import EventProducer
from streams.tokens import mint_token
from tests.benchmarks.report import Figure, Section
from tests.helpers import free_port
from tests.stack import Deployment, GatewayProcess, Stack, delete_deployment

TOKEN_KEY = "bench-sse-key"
TABS_PER_USER = 10
FRAMES_PER_USER = 5
PREVIEW = "Nice work finishing the quarterly report! Want to pick the next one?"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Clients:
    """Open streams that count the frames they receive."""

    def __init__(self) -> None:
        self.frames = 0
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )
        self.tasks: list[asyncio.Task[None]] = []
        self.opened = 0

    async def open(self, urls: list[tuple[str, dict[str, str]]]) -> None:
        ready: list[asyncio.Future[None]] = []
        for url, headers in urls:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            ready.append(future)
            self.tasks.append(asyncio.create_task(self._read(url, headers, future)))
            if len(ready) % 500 == 0:
                await asyncio.gather(*ready[-500:])
        await asyncio.gather(*ready)

    async def _read(self, url: str, headers: dict[str, str], ready: asyncio.Future[None]) -> None:
        async with self.session.get(url, headers=headers) as response:
            self.opened += 1
            ready.set_result(None)
            async for chunk in response.content.iter_any():
                self.frames += chunk.count(b"event: new_message")

    async def wait_for(self, frames: int, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while self.frames < frames and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter, not an event
            await asyncio.sleep(0.02)
        return time.monotonic()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()


async def measure(
    connections: int,
    pid: int,
    url_for: Callable[[str], tuple[str, dict[str, str]]],
    fan_out: Callable[[list[str]], Awaitable[None]],
) -> dict[str, float]:
    users = [f"sse-{number}" for number in range(connections // TABS_PER_USER)]
    clients = Clients()
    try:
        before = rss_bytes(pid)
        await clients.open([url_for(user) for user in users for _ in range(TABS_PER_USER)])
        await asyncio.sleep(2)
        after = rss_bytes(pid)
        expected = len(users) * TABS_PER_USER * FRAMES_PER_USER
        started = time.monotonic()
        await fan_out(users)
        done = await clients.wait_for(expected, 120)
        return {
            "bytes_per_connection": (after - before) / connections,
            "frames_per_s": clients.frames / (done - started),
            "frames": clients.frames,
            "expected": expected,
            "opened": clients.opened,
        }
    finally:
        await clients.close()


async def run_async(
    stack: Stack, log_dir: Path, connections: int, baseline_process: subprocess.Popen[str], baseline_port: int
) -> Section:
    token = uuid.uuid4().hex[:8]
    log = log_dir / "sse"
    log.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(stack=stack, prefix=f"s{token}.", schema=f"s_{token}", partitions=4, log_dir=log)
    await create_topics(deployment.settings())
    gateway = GatewayProcess(
        deployment, free_port(), LUNA_LIVE_TOKEN_KEY=TOKEN_KEY, LUNA_LIVE_QUEUE_MAX="1000", LUNA_LOG_LEVEL="WARNING"
    ).start()
    try:
        assert gateway.process is not None

        def ours_url(user: str) -> tuple[str, dict[str, str]]:
            return f"{gateway.url}/api/triggers/live", {
                "Authorization": f"Bearer {mint_token(TOKEN_KEY.encode(), user, 3600)}"
            }

        async def ours_fan_out(users: list[str]) -> None:
            records = [
                LiveEvent(
                    user_id=user,
                    type="new_message",
                    produced_at=datetime.now(UTC),
                    data={"session_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4()), "preview": PREVIEW},
                    dedupe_key=f"{user}-{number}",
                )
                for number in range(FRAMES_PER_USER)
                for user in users
            ]
            async with EventProducer(stack.bootstrap, deployment.prefix) as producer:
                await asyncio.gather(
                    *(producer.send_raw(deployment.topics.live, item.user_id.encode(), dumps(item)) for item in records)
                )

        def baseline_url(user: str) -> tuple[str, dict[str, str]]:
            return f"http://127.0.0.1:{baseline_port}/live?user={user}", {}

        async def baseline_fan_out(users: list[str]) -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"http://127.0.0.1:{baseline_port}/broadcast?count={FRAMES_PER_USER}") as response,
            ):
                await response.read()

        ours = await measure(connections, gateway.process.pid, ours_url, ours_fan_out)
        baseline = await measure(connections, baseline_process.pid, baseline_url, baseline_fan_out)
    finally:
        if gateway.process is not None and gateway.process.poll() is None:
            gateway.process.terminate()
            gateway.process.wait(timeout=30)
        await delete_deployment(deployment)

    section = Section(
        "SSE gateway",
        f"{connections:,} concurrent SSE connections to one gateway process ({TABS_PER_USER} tabs for each of "
        f"{connections // TABS_PER_USER:,} users), then {FRAMES_PER_USER} `new_message` events per user produced "
        "to the live topic and fanned out to every tab. Baseline: a minimal aiohttp handler (no auth, no topic, "
        "no replay) writing frames of the same size to the same connections. Clients run in the benchmark "
        "process on the same two cores.",
        [
            Figure(
                "fan-out frames/s",
                ours["frames_per_s"],
                "frames/s",
                baseline=baseline["frames_per_s"],
                goal="ratio at least 0.8",
            ),
            Figure(
                "memory per idle connection",
                ours["bytes_per_connection"] / 1024,
                "KB",
                baseline=baseline["bytes_per_connection"] / 1024,
                goal="under 50 KB",
                higher_is_better=False,
            ),
        ],
    )
    section.notes.append(
        f"Connections opened: {ours['opened']:.0f} to the gateway, {baseline['opened']:.0f} to the baseline; "
        f"frames received: {ours['frames']:.0f} and {baseline['frames']:.0f} of {ours['expected']:.0f}."
    )
    return section


def run(stack: Stack, log_dir: Path, connections: int) -> Section:
    raise_open_files()
    baseline_process = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.minimal_sse"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert baseline_process.stdout is not None
        baseline_port = int(baseline_process.stdout.readline())
        return asyncio.run(run_async(stack, log_dir, connections, baseline_process, baseline_port))
    finally:
        baseline_process.terminate()
        baseline_process.wait(timeout=30)
