"""The gateway process answers health and metrics on loopback."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import orjson

from tests.helpers import free_port
from tests.stack import LUNA_BIN, Deployment


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_healthz_and_metrics(deployment: Deployment) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(LUNA_BIN), "gateway"],
        env=deployment.env(LUNA_GATEWAY_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/healthz")
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 200
        assert orjson.loads(body) == {"status": "ok"}
        status, body = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'luna_gateway_requests_total{route="/healthz",status="200"} 1.0' in body
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_healthz_reports_unreachable_database(deployment: Deployment) -> None:
    port, dead_port = free_port(), free_port()
    process = subprocess.Popen(
        [str(LUNA_BIN), "gateway"],
        env=deployment.env(
            LUNA_GATEWAY_PORT=str(port), LUNA_DATABASE_URL=f"postgresql://luna@127.0.0.1:{dead_port}/luna"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/healthz")
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert status == 503
        assert orjson.loads(body) == {"status": "unavailable", "database": "unreachable"}
    finally:
        process.terminate()
        process.wait(timeout=30)
