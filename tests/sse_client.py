"""A raw SSE client over aiohttp that keeps the exact bytes it read."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import aiohttp


class SseClient:
    """Reads ``GET /api/triggers/live`` as bytes and splits it into frames at blank lines."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            self._headers["Last-Event-ID"] = last_event_id
        self._session: aiohttp.ClientSession | None = None
        self.response: aiohttp.ClientResponse | None = None
        self.raw = b""
        self._consumed = 0

    async def __aenter__(self) -> SseClient:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self.response = await self._session.get(f"{self._url}/api/triggers/live", headers=self._headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.response is not None:
            self.response.close()
        if self._session is not None:
            await self._session.close()

    async def frames(self, count: int, timeout_s: float = 20) -> list[bytes]:
        """Return the next ``count`` frames (each ending in a blank line), skipping nothing."""
        assert self.response is not None
        deadline = time.monotonic() + timeout_s
        frames: list[bytes] = []
        while len(frames) < count:
            end = self.raw.find(b"\n\n", self._consumed)
            if end >= 0:
                frames.append(self.raw[self._consumed : end + 2])
                self._consumed = end + 2
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(frames)} of {count} frames in {timeout_s}s; unread: {self.pending()!r}")
            try:
                chunk = await asyncio.wait_for(self.response.content.readany(), remaining)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"stream closed after {len(frames)} of {count} frames")
            self.raw += chunk
        return frames

    async def nothing_more(self, wait_s: float) -> None:
        """Assert that no byte arrives within ``wait_s`` seconds."""
        assert self.response is not None
        try:
            chunk = await asyncio.wait_for(self.response.content.readany(), wait_s)
        except TimeoutError:
            return
        self.raw += chunk
        raise AssertionError(f"unexpected bytes: {self.pending()!r}")

    def pending(self) -> bytes:
        return self.raw[self._consumed :]
