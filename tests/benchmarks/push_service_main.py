"""Run the local push service in its own process for the Web Push benchmark.

Prints one JSON line with the service's subscriptions, then serves until its
standard input closes.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from tests.push_service import LocalPushService


async def main(devices: int) -> None:
    service = await LocalPushService().start()
    subscriptions = [service.add_device(f"device-{number}") for number in range(devices)]
    print(orjson.dumps({"origin": service.origin, "subscriptions": subscriptions}).decode(), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    accepted = sum(len(items) for items in service.received.values())
    print(orjson.dumps({"accepted": accepted}).decode(), flush=True)
    await service.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
