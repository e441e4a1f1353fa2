"""Test helpers around the real local broker, database and worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.settings import Settings
from streams.topics import TopicNames

ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = ROOT / "deploy" / "local" / "stack.sh"
LUNA_BIN = Path(sys.executable).parent / "luna-triggers"
T = TypeVar("T")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


@dataclass
class Stack:
    """The broker and database of the whole test run."""

    bootstrap: str
    database_url: str


@dataclass
class Deployment:
    """One isolated deployment: its own topic prefix and database schema."""

    stack: Stack
    prefix: str
    schema: str
    partitions: int
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "LUNA_KAFKA_BOOTSTRAP": self.stack.bootstrap,
                "LUNA_DATABASE_URL": self.stack.database_url,
                "LUNA_TOPIC_PREFIX": self.prefix,
                "LUNA_DATABASE_SCHEMA": self.schema,
                "LUNA_PARTITIONS": str(self.partitions),
                "LUNA_COMMIT_INTERVAL_S": "0.5",
                "LUNA_TICKER_INTERVAL_S": os.environ.get("TEST_TICKER_INTERVAL_S", "0.5"),
                "LUNA_SESSION_TIMEOUT_S": "6",
                "LUNA_ENV_FILE": "/dev/null",
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap=self.stack.bootstrap,
            database_url=self.stack.database_url,  # type: ignore[arg-type]
            topic_prefix=self.prefix,
            database_schema=self.schema,
            partitions=self.partitions,
        )

    def cli(self, *args: str, check: bool = True, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``luna-triggers`` with this deployment's settings."""
        result = subprocess.run(
            [str(LUNA_BIN), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"luna-triggers {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.stack.database_url, server_settings={"search_path": self.schema})

    async def fetch(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        connection = await self.connect()
        try:
            return list(await connection.fetch(sql, *params))
        except asyncpg.UndefinedTableError:
            return []
        finally:
            await connection.close()

    async def read_topic(self, topic: str) -> list[Any]:
        """Return every record in ``topic`` from the beginning, without a group."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(self.partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
            return records
        finally:
            await consumer.stop()

    async def pipeline_report(self) -> str:
        """End offsets of the main topics and the worker group's committed
        offsets, to explain a stream that did not finish."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap, enable_auto_commit=False)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(f"{self.prefix}worker")
            lines = []
            for topic in (self.topics.activity, self.topics.occurrences, self.topics.deliveries, self.topics.outcomes):
                partitions = [TopicPartition(topic, p) for p in range(self.partitions)]
                ends = await consumer.end_offsets(partitions)
                for tp in partitions:
                    done = committed.get(tp)
                    lines.append(f"{tp.topic}[{tp.partition}] end={ends[tp]} committed={done.offset if done else None}")
            connection = await asyncpg.connect(self.stack.database_url)
            try:
                activity = await connection.fetch(
                    """SELECT pid, state, wait_event_type, wait_event, left(query, 120) AS query,
                              now() - xact_start AS in_transaction
                       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"""
                )
            finally:
                await connection.close()
            lines += [f"pg {dict(row)}" for row in activity if row["state"] != "idle"]
            return "\n".join(lines)
        finally:
            await consumer.stop()
            await admin.close()


class WorkerProcess:
    """A ``luna-triggers worker`` subprocess with its own log file."""

    def __init__(self, deployment: Deployment, name: str = "worker", **env: str) -> None:
        self.deployment = deployment
        self.log_path = deployment.log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, timeout_s: float = 60) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(LUNA_BIN), "worker"],
            env=self.deployment.env(**self._env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait_ready:
            try:
                self.wait_for_log("Worker]: Ready", timeout_s)
            except AssertionError:
                # Do not leave a worker running that never became ready.
                self.stop()
                raise
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout_s: float = 60, count: int = 1) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker log has no {text!r} after {timeout_s}s:\n{self.log_text()[-4000:]}")

    def kill(self) -> None:
        """Stop the worker with SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30) -> None:
        stop_process(self.process, timeout_s)


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 30) -> None:
    """Stop a process this test run started: SIGTERM, then SIGKILL after ``timeout_s``."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


async def wait_until(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout_s: float = 60, interval_s: float = 0.25
) -> T:
    """Poll ``probe`` until ``accept`` holds for its result; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout_s}s; last value: {value!r}")
        await asyncio.sleep(interval_s)
        value = await probe()
    return value


async def delete_deployment(deployment: Deployment) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=deployment.stack.bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(deployment.prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
    connection = await asyncpg.connect(deployment.stack.database_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{deployment.schema}" CASCADE')
    finally:
        await connection.close()


class GatewayProcess:
    """A ``luna-triggers gateway`` subprocess on a free loopback port."""

    def __init__(self, deployment: Deployment, port: int, name: str = "gateway", **env: str) -> None:
        self.deployment = deployment
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = deployment.log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30) -> GatewayProcess:
        """Start the gateway and wait until ``/healthz`` returns 200."""
        import urllib.error
        import urllib.request

        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(LUNA_BIN), "gateway"],
            env=self.deployment.env(LUNA_GATEWAY_PORT=str(self.port), **self._env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start:\n{self.log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30) -> None:
        stop_process(self.process, timeout_s)
