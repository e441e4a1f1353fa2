"""The gateway process serves health and metrics on loopback."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import orjson

from tests.helpers import free_port
from tests.stack import LUNA_BIN, Deployment, stop_process

START_TIMEOUT_S = 30


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def first_response(url: str) -> tuple[int, bytes]:
    """Return the first response of a gateway that is still starting."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return get(url)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_gateway(deployment: Deployment, port: int, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(LUNA_BIN), "gateway"],
        env=deployment.env(LUNA_GATEWAY_PORT=str(port), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_healthz_and_metrics(deployment: Deployment) -> None:
    port = free_port()
    process = start_gateway(deployment, port)
    try:
        status, body = first_response(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert orjson.loads(body) == {"status": "ok"}
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'luna_gateway_requests_total{route="/healthz",status="200"} 1.0' in body
    finally:
        stop_process(process)


def test_healthz_reports_unreachable_database(deployment: Deployment) -> None:
    port, dead_port = free_port(), free_port()
    process = start_gateway(deployment, port, LUNA_DATABASE_URL=f"postgresql://luna@127.0.0.1:{dead_port}/luna")
    try:
        status, body = first_response(f"http://127.0.0.1:{port}/healthz")
        assert status == 503
        assert orjson.loads(body) == {"status": "unavailable", "database": "unreachable"}
    finally:
        stop_process(process)
