"""Many WebSocket clients in one asyncio loop, recording what they receive with cheap parsing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

MARK = re.compile(r"bench#(\d+)#")


class Client:
    """One connection; counts frames and notes when each marked message arrived (no full JSON parse)."""

    def __init__(self, index: int, ws: ClientConnection, sink: dict[int, list[tuple[int, float]]]) -> None:
        self.index = index
        self.ws = ws
        self.sink = sink
        self.frames = 0
        self.presence_frames = 0
        self.last_presence = 0.0
        self.last_frame = 0.0
        self.replies: asyncio.Queue[str] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                now = time.perf_counter()
                text = raw if isinstance(raw, str) else raw.decode()
                self.frames += 1
                self.last_frame = now
                head = text[:40]
                if (
                    '"type":"batch"' in head
                    or '"type": "batch"' in head
                    or '"type":"message"' in head
                    or ('"type": "message"' in head)
                ):
                    for m in MARK.finditer(text):
                        self.sink.setdefault(int(m.group(1)), []).append((self.index, now))
                    if "presence_diff" in text:
                        self.presence_frames += 1
                        self.last_presence = now
                elif "presence_diff" in head:
                    self.presence_frames += 1
                    self.last_presence = now
                elif '"type":"typing"' not in head:
                    await self.replies.put(text)

    async def request(self, frame: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        await self.ws.send(json.dumps(frame))
        return dict(json.loads(await asyncio.wait_for(self.replies.get(), timeout)))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.task.cancel()


async def open_clients(
    url_for: Callable[[int], str],
    n: int,
    sink: dict[int, list[tuple[int, float]]],
    *,
    concurrency: int = 50,
    start: int = 0,
) -> tuple[list[Client], list[float], int]:
    """Open n connections, `concurrency` handshakes in flight: (clients, handshake seconds, failures)."""
    sem = asyncio.Semaphore(concurrency)
    durations: list[float] = []
    failures = 0

    async def one(i: int) -> Client | None:
        nonlocal failures
        async with sem:
            t = time.perf_counter()
            for _attempt in range(5):
                try:
                    ws = await connect(
                        url_for(i), max_size=2**20, open_timeout=60, compression=None, ping_interval=None
                    )
                    durations.append(time.perf_counter() - t)
                    return Client(i, ws, sink)
                except Exception:
                    await asyncio.sleep(0.5)
            failures += 1
            return None

    opened = await asyncio.gather(*(one(start + i) for i in range(n)))
    return [c for c in opened if c is not None], durations, failures
