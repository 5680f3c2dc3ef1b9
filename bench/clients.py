"""Many WebSocket clients in one asyncio loop, recording what they receive with cheap parsing: each is
a parley_client Connection whose pushed messages are counted from the text, never decoded."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from parley_client import Connection
from parley_client.connection import open_socket

MARK = re.compile(r"bench#(\d+)#")


class Client(Connection):
    """One connection; counts frames and notes when each marked message arrived (no full JSON parse).
    Replies (joins' `joined`, the acks of raw sends) go through the client's own matching."""

    def __init__(self, index: int, ws: ClientConnection, sink: dict[int, list[tuple[int, float]]]) -> None:
        self.index = index
        self.sink = sink
        self.presence_frames = 0
        self.last_presence = 0.0
        super().__init__(ws, keep_events=False)

    def handle_text(self, text: str, now: float) -> None:
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
            super().handle_text(text, now)


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
                    ws = await open_socket(
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
