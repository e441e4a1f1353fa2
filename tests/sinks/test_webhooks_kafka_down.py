"""A webhook call while the broker is down gets a 503 and is not accepted.

The test stops a broker, so it runs its own private one (state in a
temporary folder, jars shared with the main stack) and never touches the
broker the other tests use.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streams.admin import create_topics
from tests.conftest import LOCAL_DIR
from tests.helpers import wait_for_messages
from tests.sinks.webhook_support import GatewayProcess, create_hook, post, wait_for_hook
from tests.stack import ROOT, Deployment, Stack, WorkerProcess, delete_deployment

KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
PUBLISH_TIMEOUT_S = 2.0


class PrivateBroker:
    """A single-node broker of ``kafka.sh`` whose state lives in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        # The jars are the main stack's, so no second resolution is needed.
        (folder / "kafka-libs").symlink_to(LOCAL_DIR / "kafka-libs")

    def run(self, action: str) -> str:
        env = {**os.environ, "LUNA_LOCAL_DIR": str(self.folder)}
        result = subprocess.run(
            [str(KAFKA_SCRIPT), action], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"kafka.sh {action} exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout.strip()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "private-stack")
    broker.run("start")
    yield broker
    broker.run("stop")


@pytest.mark.timeout(120)
async def test_kafka_down_answers_503(
    stack: Stack, private_broker: PrivateBroker, request: pytest.FixtureRequest
) -> None:
    token = uuid.uuid4().hex[:10]
    log_dir = ROOT / ".local" / "test-logs" / request.node.name
    log_dir.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(
        stack=Stack(bootstrap=private_broker.run("bootstrap"), database_url=stack.database_url),
        prefix=f"t{token}.",
        schema=f"t_{token}",
        partitions=2,
        log_dir=log_dir,
    )
    await create_topics(deployment.settings())
    worker = WorkerProcess(deployment)
    gateway = GatewayProcess(
        deployment, LUNA_WEBHOOK_PUBLISH_TIMEOUT_S=str(PUBLISH_TIMEOUT_S), LUNA_WEBHOOK_HOOK_CACHE_S="0"
    )
    try:
        worker.start()
        gateway.start()
        create_hook(deployment, "kay", "--id", "open-kay-01", "--name", "Open", "--scheme", "none", "--template", "{n}")
        await wait_for_hook(deployment, "open-kay-01")
        url = gateway.url("open-kay-01")

        def headers(key: str) -> dict[str, str]:
            return {"Content-Type": "application/json", "Idempotency-Key": key}

        status, _, _ = await post(url, orjson.dumps({"n": "before"}), headers("k-1"))
        assert status == 202

        private_broker.run("stop")
        started = time.monotonic()
        status, answer, answer_headers = await post(url, orjson.dumps({"n": "down"}), headers("k-2"))
        elapsed_s = time.monotonic() - started
        assert status == 503
        assert answer["error"] == "kafka_unavailable"
        assert int(answer_headers["Retry-After"]) >= 1
        assert elapsed_s < PUBLISH_TIMEOUT_S + 3

        private_broker.run("start")
        deadline = time.monotonic() + 30
        while True:
            status, answer, _ = await post(url, orjson.dumps({"n": "after"}), headers("k-3"))
            if status == 202 or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert (status, answer) == (202, {"status": "accepted", "delivery_id": "k-3"})

        rows = await wait_for_messages(deployment, "kay", 2, timeout_s=40)
        assert "before" in [row["content"] for row in rows]
        assert "after" in [row["content"] for row in rows]
    finally:
        gateway.stop()
        worker.stop(timeout_s=10)
        await delete_deployment(deployment)
