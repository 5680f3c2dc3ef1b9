"""A real WebSocket client for end-to-end tests: sends frames, collects replies and pushed events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

REPLY_TYPES = {
    "joined",
    "left",
    "ack",
    "history",
    "presence",
    "heartbeat",
    "channel_created",
    "invited",
    "channels",
    "error",
}


class Peer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.events: list[dict[str, Any]] = []  # pushed events, batches unpacked, in arrival order
        self.frames = 0  # raw frames received
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Peer:
        return cls(await connect(url, max_size=2**20, open_timeout=10))

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._read_frames()

    async def _read_frames(self) -> None:
        async for raw in self.ws:
            self.frames += 1
            frame = json.loads(raw)
            if frame.get("type") in REPLY_TYPES:
                await self.replies.put(frame)
                continue
            async with self._changed:
                self.events.extend(frame["events"] if frame.get("type") == "batch" else [frame])
                self._changed.notify_all()

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def request(self, frame: dict[str, Any] | str, timeout: float = 10) -> dict[str, Any]:
        await self.send(frame)
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """The first pushed event (already received or still to come) that matches."""

        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait until the server closes the connection; the close code it sent."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
