"""Fixtures: one real broker and database for the whole run, and a fresh
topic prefix and schema for every test that uses a deployment."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streams.admin import create_topics
from streams.emit import EventProducer
from tests.stack import (
    ROOT,
    STACK_SCRIPT,
    Deployment,
    GatewayProcess,
    Stack,
    WorkerProcess,
    delete_deployment,
    read_env_file,
)

#: The stack scripts keep their state here; ``LUNA_LOCAL_DIR`` lets several
#: checkouts share one running broker and database.
LOCAL_DIR = Path(os.environ.get("LUNA_LOCAL_DIR") or ROOT / ".local")
LOG_DIR = ROOT / ".local" / "test-logs"
#: Where the stack scripts keep their state; another checkout's folder lets
#: several checkouts share one running broker and database.
LOCAL_DIR = Path(os.environ.get("LUNA_LOCAL_DIR") or ROOT / ".local")


def _component_running(script: str) -> bool:
    result = subprocess.run([str(ROOT / "deploy" / "local" / script), "status"], capture_output=True, text=True)
    return result.stdout.strip() == "running"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Start the local Kafka and PostgreSQL unless they already run; stop what was started."""
    already_running = _component_running("kafka.sh") and _component_running("postgres.sh")
    if not already_running:
        subprocess.run([str(STACK_SCRIPT), "up"], check=True, capture_output=True, timeout=300)
    env = read_env_file(LOCAL_DIR / "stack.env")
    yield Stack(bootstrap=env["LUNA_KAFKA_BOOTSTRAP"], database_url=env["LUNA_DATABASE_URL"])
    if not already_running:
        subprocess.run([str(STACK_SCRIPT), "down"], check=False, capture_output=True, timeout=120)


@pytest.fixture
async def deployment(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """A fresh topic prefix and database schema, removed after the test."""
    token = uuid.uuid4().hex[:10]
    log_dir = LOG_DIR / request.node.name.replace("/", "_")[:80]
    log_dir.mkdir(parents=True, exist_ok=True)
    created = Deployment(stack=stack, prefix=f"t{token}.", schema=f"t_{token}", partitions=4, log_dir=log_dir)
    await create_topics(created.settings())
    yield created
    # Set TEST_KEEP_DEPLOYMENTS=1 to keep topics and schema for a post-mortem.
    if not os.environ.get("TEST_KEEP_DEPLOYMENTS"):
        await delete_deployment(created)


@pytest.fixture
def start_worker(deployment: Deployment) -> Iterator[type[WorkerProcess]]:
    """Start workers for the test; every one still running is stopped afterwards."""
    started: list[WorkerProcess] = []

    class TrackedWorker(WorkerProcess):
        def start(self, wait_ready: bool = True, timeout_s: float = 60) -> WorkerProcess:
            started.append(self)
            return super().start(wait_ready, timeout_s)

    yield TrackedWorker
    for worker in started:
        worker.stop()


@pytest.fixture
def start_gateway(deployment: Deployment) -> Iterator[type[GatewayProcess]]:
    """Start gateways for the test; every one still running is stopped afterwards."""
    started: list[GatewayProcess] = []

    class TrackedGateway(GatewayProcess):
        def start(self, timeout_s: float = 30) -> GatewayProcess:
            started.append(self)
            return super().start(timeout_s)

    yield TrackedGateway
    for gateway in started:
        gateway.stop()


@pytest.fixture
async def producer(deployment: Deployment) -> AsyncIterator[EventProducer]:
    async with EventProducer(deployment.stack.bootstrap, deployment.prefix) as started:
        yield started


def pytest_configure(config: pytest.Config) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
