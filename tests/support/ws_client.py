"""The one WebSocket client of the tests and the benchmarks: a connection read by a task of its own.

`WsClient` receives (counting frames and noting when the last one came), queues replies and answers
`request()`; what a frame is, a subclass decides: `Peer` (tests/e2e, tests/reliability) parses every
frame and keeps pushed events with batches unpacked; tests/reliability/chat_client.py builds its
reconnecting client on it, and bench/clients.py counts marked messages without parsing them.
bench imports this module (from the repository root, as `python -m bench` runs): one client to keep
in step with the protocol, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ws_emulator.gateway.devtokens import mint_token

# The reply each action gets (None: no reply); every other frame type is a pushed event.
REPLY = {
    "join": "joined",
    "leave": "left",
    "message": "ack",
    "typing": None,
    "history": "history",
    "presence": "presence",
    "heartbeat": "heartbeat",
    "create_channel": "channel_created",
    "invite": "invited",
    "channels": "channels",
    "open_dm": "dm_opened",
    "mark_read": "marked_read",
}
REPLY_TYPES = frozenset(kind for kind in REPLY.values() if kind) | {"error"}


def unpack(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The events one pushed frame holds: a `batch` is unpacked, anything else is one event."""
    return list(frame["events"]) if frame.get("type") == "batch" else [frame]


def retryable(reply: dict[str, Any]) -> bool:
    """`internal` from Parley, or the gateway's own "Internal server error" (the function failed or
    timed out): a client sends the same frame again."""
    return reply.get("code") == "internal" or reply.get("message") == "Internal server error"


def token(
    secret: str,
    user: str,
    workspace: str,
    *,
    name: str | None = None,
    expires_in_s: int = 3600,
    **claims: Any,
) -> str:
    """A user's HS256 token, minted as the emulator's token endpoint mints it."""
    return mint_token(secret, user, name=name, claims={"workspace": workspace, **claims}, ttl_s=expires_in_s)


def token_url(ws_url: str, secret: str, user: str, workspace: str, **kwargs: Any) -> str:
    """The WebSocket URL with the user's token in the query string, as the authorizer reads it."""
    return f"{ws_url}?token={token(secret, user, workspace, **kwargs)}"


class WsClient:
    """One connection; `replies` holds the frames a subclass's `on_frame` treats as replies."""

    OPTIONS: dict[str, Any] = {"max_size": 2**20, "open_timeout": 10}

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames = 0  # raw frames received
        self.last_frame = 0.0  # time.perf_counter() when the last one arrived
        self.replies: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, **options: Any) -> Self:
        return cls(await connect(url, **(cls.OPTIONS | options)))

    async def _read(self) -> None:
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in self.ws:
                    now = time.perf_counter()
                    self.frames += 1
                    self.last_frame = now
                    await self.on_frame(raw if isinstance(raw, str) else raw.decode(), now)
        finally:
            await self.on_closed()

    async def on_frame(self, text: str, now: float) -> None:
        """Every frame as it arrives: the default treats each one as a reply."""
        await self.replies.put(json.loads(text))

    async def on_closed(self) -> None:
        """The connection ended (either side): a `None` reply wakes a request still waiting."""
        await self.replies.put(None)

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def request(self, frame: dict[str, Any] | str, timeout: float = 10) -> dict[str, Any]:
        """Send a frame and wait for the next reply."""
        await self.send(frame)
        reply = await asyncio.wait_for(self.replies.get(), timeout)
        if reply is None:  # the connection ended first
            raise ConnectionClosed(self.ws.protocol.close_rcvd, self.ws.protocol.close_sent)
        return reply

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait until the server closes the connection; the close code it sent."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Peer(WsClient):
    """A test's user: replies answer requests, pushed events are kept (batches unpacked) in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.events: list[dict[str, Any]] = []  # pushed events, batches unpacked, in arrival order
        self._changed = asyncio.Condition()
        super().__init__(ws)

    async def on_frame(self, text: str, now: float) -> None:
        frame = json.loads(text)
        if frame.get("type") in REPLY_TYPES:
            await self.replies.put(frame)
            return
        async with self._changed:
            self.events.extend(unpack(frame))
            self._changed.notify_all()

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

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def control(self, channel: str = "general", timeout: float = 30) -> str:
        """The positive control of an absence check: a marker message this peer sends now comes back
        to it through the fan-out, so the connection was receiving and whatever was posted to the
        channel before the marker has had its chance to arrive. The marker's text, to leave it out."""
        text = f"control-{uuid.uuid4().hex[:12]}"
        ack = await self.request({"action": "message", "channel": channel, "text": text}, timeout)
        assert ack["type"] == "ack", ack
        await self.wait_for(lambda e: e["type"] == "message" and e["text"] == text, timeout)
        return text
