"""A gateway process and signed webhook calls for the webhook tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import aiohttp
import orjson

from tests.helpers import free_port
from tests.stack import LUNA_BIN, Deployment, wait_until


class GatewayProcess:
    """A ``luna-triggers gateway`` subprocess on a free loopback port."""

    def __init__(self, deployment: Deployment, **env: str) -> None:
        self.port = free_port()
        self.log_path = deployment.log_dir / f"gateway-{uuid.uuid4().hex[:6]}.log"
        self._env = deployment.env(LUNA_GATEWAY_PORT=str(self.port), **env)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, hook_id: str) -> str:
        return f"{self.base_url}/api/triggers/webhook/{hook_id}"

    def start(self, timeout_s: float = 30) -> GatewayProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(LUNA_BIN), "gateway"], env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gateway did not start:\n{self.log_text()[-3000:]}") from None
                time.sleep(0.2)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def github_headers(body: bytes, secret: str, delivery_id: str, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def stripe_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={signed_at},v1={digest}"}


def standard_headers(body: bytes, secret: str, webhook_id: str, timestamp: int | None = None) -> dict[str, str]:
    signed_at = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{signed_at}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(signed_at),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST ``body`` and return the status, the decoded JSON body and the headers."""
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        raw = await response.read()
        return response.status, orjson.loads(raw), dict(response.headers)


def create_hook(deployment: Deployment, user_id: str, *options: str) -> dict[str, str]:
    """Create a hook with the CLI and return the ``key: value`` lines it printed."""
    result = deployment.cli("hooks", "create", "--user", user_id, *options)
    printed = {}
    for line in result.stdout.splitlines():
        key, separator, value = line.partition(": ")
        if separator:
            printed[key] = value
    return printed


async def wait_for_hook(deployment: Deployment, hook_id: str, **expected: Any) -> None:
    """Wait until the hooks read model has ``hook_id`` with the ``expected`` columns."""

    def matches(rows: list[Any]) -> bool:
        return len(rows) == 1 and all(rows[0][key] == value for key, value in expected.items())

    await wait_until(
        lambda: deployment.fetch("SELECT * FROM webhook_hooks WHERE hook_id = $1", hook_id), matches, timeout_s=30
    )
