"""A client that behaves as docs/protocol.md asks: dedupes by id, resends with the same clientMsgId,
and after losing its connection reconnects and re-joins with `since`, filling a gap with `history`.

It also keeps the books a reliability test needs: every message shown (once), raw duplicates,
per-connection order of live events, error frames by code, reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

from tests.support.ws_client import WsClient, retryable, unpack

EVENT_TYPES = {"message", "typing", "presence_diff", "batch"}
_ids = itertools.count(1)


class Lost(Exception):
    """The connection ended while a request was outstanding."""


class _Link(WsClient):
    """One connection of a ChatClient: events go to the client's books, replies to its requests."""

    OPTIONS = {"open_timeout": 60, "max_size": 2**22, "close_timeout": 2}

    def __init__(self, ws: ClientConnection, owner: ChatClient) -> None:
        self.owner = owner
        super().__init__(ws)

    async def on_frame(self, text: str, now: float) -> None:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind in EVENT_TYPES:
            for event in unpack(frame):
                self.owner._on_event(event)
            return
        if kind == "error":
            self.owner.errors[frame.get("code", "?")] += 1
            if frame.get("action") == "typing":
                return  # typing has no reply of its own to wait for
        await self.replies.put(frame)

    async def on_closed(self) -> None:
        if self.ws.close_code is not None:
            self.owner.closes[self.ws.close_code] += 1
        await super().on_closed()
        self.owner.closed_by_server.set()


class ChatClient:
    def __init__(self, url: Callable[[], str], user: str, channels: list[str]) -> None:
        self._url = url
        self.user = user
        self.channels = channels
        self.shown: dict[str, dict[str, Any]] = {}  # message id -> message, once each
        self.last_id: dict[str, str] = {}  # channel -> greatest id shown
        self.raw_duplicates = 0
        self.order_violations: list[tuple[str, str]] = []
        self.errors: Counter[str] = Counter()
        self.reconnects = 0
        self.closes: Counter[int] = Counter()
        self.typing_seen = 0
        self._link: _Link | None = None
        self._live_last: dict[str, str] = {}  # per connection and channel: last live message id
        self._lock = asyncio.Lock()  # one request at a time, so the next reply answers it
        self._conn_lock = asyncio.Lock()
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self.closed_by_server = asyncio.Event()
        self.ready = asyncio.Event()  # connected and joined to every channel
        self.want_open = True

    # ---- connection --------------------------------------------------------------------------

    async def open(self, attempts: int = 40) -> None:
        """Connect (retrying 429/5xx with backoff) and join every channel, `since` what was shown."""
        self.ready.clear()
        delay = 0.1
        for attempt in range(attempts):
            self._live_last = {}
            self.closed_by_server.clear()
            try:
                self._link = _Link(await connect(self._url(), **_Link.OPTIONS), self)
                break
            except (InvalidStatus, OSError, TimeoutError) as exc:
                status = getattr(getattr(exc, "response", None), "status_code", 0)
                self.errors[f"handshake:{status}"] += 1
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        for channel in self.channels:
            await self.join(channel)
        self.ready.set()

    async def ensure_open(self) -> None:
        """Reconnect (and re-join with `since`) unless the connection is open."""
        async with self._conn_lock:
            link = self._link
            if link is not None and link.ws.state is State.OPEN and not self.closed_by_server.is_set():
                return
            self.reconnects += 1
            await self.drop()
            await self.open()

    async def supervise(self) -> None:
        """Run alongside: whenever the server closes the connection, come back."""
        while self.want_open:
            await self.closed_by_server.wait()
            if not self.want_open:
                return
            try:
                await self.ensure_open()
            except Exception:  # the next say() or the test's final check will tell
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        self.want_open = False
        self.closed_by_server.set()
        await self.drop()

    def abort(self) -> None:
        """Lose the connection as a network failure does: no close frame, no $disconnect from us."""
        assert self._link is not None
        self._link.ws.transport.abort()

    async def drop(self) -> None:
        """Close from the client side (the server runs $disconnect)."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    # ---- what the user sees ------------------------------------------------------------------

    def _show(self, message: dict[str, Any]) -> None:
        if message["id"] in self.shown:
            self.raw_duplicates += 1
            return
        self.shown[message["id"]] = message
        channel = message["channel"]
        if message["id"] > self.last_id.get(channel, ""):
            self.last_id[channel] = message["id"]

    def _on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "typing":
            self.typing_seen += 1
        if event["type"] != "message":
            return
        channel = event["channel"]
        previous = self._live_last.get(channel, "")
        # a redelivered message (at least once) may come after later ones: a duplicate, not disorder
        if event["id"] < previous and event["id"] not in self.shown:
            self.order_violations.append((previous, event["id"]))
        elif event["id"] > previous:
            self._live_last[channel] = event["id"]
        self._show(event)

    # ---- requests ----------------------------------------------------------------------------

    async def request(self, frame: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
        async with self._lock:
            link = self._link
            if link is None:
                raise Lost("not connected")
            try:
                await link.send(frame)
            except ConnectionClosed as exc:
                raise Lost("closed while sending") from exc
            try:
                reply = await asyncio.wait_for(link.replies.get(), timeout)
            except TimeoutError as exc:
                raise Lost("no reply") from exc
            if reply is None:
                raise Lost("closed while waiting")
            return reply

    async def send_only(self, frame: dict[str, Any]) -> None:
        link = self._link
        if link is not None:
            with contextlib.suppress(ConnectionClosed):
                await link.send(frame)

    async def join(self, channel: str) -> None:
        frame: dict[str, Any] = {"action": "join", "channel": channel}
        since = self.last_id.get(channel)
        if since:
            frame["since"] = since
        for _ in range(5):
            reply = await self.request(frame)
            # an overloaded integration answers "Internal server error": retry, as a client would
            if reply.get("type") == "joined" or not retryable(reply):
                break
            self.errors["join:" + str(reply.get("code") or reply.get("message"))] += 1
            await asyncio.sleep(1)
        assert reply.get("type") == "joined", reply
        for message in reply["messages"]:
            self._show(message)
        if since and not reply["recovered"]:
            await self._fill_gap(channel, since, reply["messages"])

    async def _fill_gap(self, channel: str, since: str, newest: list[dict[str, Any]]) -> None:
        before = newest[0]["id"] if newest else None
        while before and before > since:
            frame: dict[str, Any] = {"action": "history", "channel": channel, "before": before, "limit": 100}
            page = await self.request(frame)
            assert page["type"] == "history", page
            for message in page["messages"]:
                if message["id"] > since:
                    self._show(message)
            if not page["hasMore"] or not page["messages"]:
                break
            before = page["messages"][0]["id"]

    def channel_lock(self, channel: str) -> asyncio.Lock:
        """Held while sending to a channel, so a test's own leave and re-join cannot race a send."""
        return self._channel_locks.setdefault(channel, asyncio.Lock())

    async def say(self, channel: str, text: str, *, deadline_s: float = 120) -> dict[str, Any]:
        """Send until acknowledged: the same clientMsgId through rate limits, conflicts and reconnects."""
        frame = {
            "action": "message",
            "channel": channel,
            "text": text,
            "clientMsgId": f"{self.user}-{next(_ids)}",
        }
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while loop.time() < end:
            try:
                await asyncio.wait_for(self.ready.wait(), 60)
                async with self.channel_lock(channel):
                    reply = await self.request(frame)
            except (Lost, TimeoutError):
                await self.ensure_open()
                continue
            if reply.get("type") == "ack":
                return reply
            if reply.get("code") == "rate_limited":
                await asyncio.sleep(reply.get("retryAfterMs", 200) / 1000)
            elif reply.get("code") == "conflict" or retryable(reply):
                # `internal` from Parley, or the gateway's "Internal server error" when the function
                # itself failed or timed out (e.g. SDK retries on throttled DynamoDB outlasting it)
                await asyncio.sleep(0.2)
            elif reply.get("code") == "not_joined":  # forgotten as gone while alive: join again
                await self.join(channel)
            else:
                raise AssertionError(f"unexpected reply {reply}")
        raise AssertionError(f"{self.user}: {text!r} never acknowledged")

    def missing(self, acked: dict[str, str]) -> list[str]:
        """Acknowledged message ids (id -> channel) of this client's channels it has not shown."""
        return [mid for mid, channel in acked.items() if channel in self.channels and mid not in self.shown]

    async def wait_for_all(self, acked: dict[str, str], timeout: float) -> list[str]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (missing := self.missing(acked)) and loop.time() < end:
            await asyncio.sleep(0.2)
        return missing
