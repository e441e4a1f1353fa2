"""The SSE baseline: a minimal aiohttp server that writes the same frames.

``GET /live?user=U`` keeps a stream open; ``POST /broadcast?count=N`` writes
N frames to every open stream. Prints its port on the first line.
"""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict

from aiohttp import web

FRAME = (
    b"id: 0-1000\nevent: new_message\n"
    b'data: {"session_id":"7d7f4c1e-2b0f-4b8e-9d55-1a2b3c4d5e6f","message_id":"0b7e5d2a-1c3f-4e8a-9b6d-7e8f9a0b1c2d",'
    b'"preview":"Nice work finishing the quarterly report! Want to pick the next one?"}\n\n'
)

streams: dict[str, list[web.StreamResponse]] = defaultdict(list)


async def live(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    user = request.query["user"]
    streams[user].append(response)
    try:
        await asyncio.Event().wait()
    finally:
        streams[user].remove(response)
    return response


async def broadcast(request: web.Request) -> web.Response:
    count = int(request.query["count"])
    for _ in range(count):
        for connections in list(streams.values()):
            for response in list(connections):
                await response.write(FRAME)
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_get("/live", live)
    app.router.add_post("/broadcast", broadcast)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
