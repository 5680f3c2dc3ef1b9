"""One WebSocket connection to Parley, read by a task of its own: requests and their replies, pushed
events kept in arrival order (batches unpacked), a raw escape hatch, and the close code.

It never reconnects: `ParleyClient` (client.py) builds reconnects, recovery and pending sends on it.
Tests and load scripts use it directly when they want one socket and every frame as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from parley_client import protocol
from parley_client.errors import ConnectionLost, HandshakeRefused, RequestTimeout
from parley_client.frames import Frame

# Parley's frames are at most 128 KB (API Gateway's limit); a little room for other servers.
DEFAULT_OPTIONS: dict[str, Any] = {"max_size": 2**20, "open_timeout": 10}


class _Waiter:
    def __init__(self, action: str | None, reply: str | None, client_msg_id: str | None) -> None:
        self.action, self.reply, self.client_msg_id = action, reply, client_msg_id
        self.future: asyncio.Future[Frame | None] = asyncio.get_running_loop().create_future()


class Connection:
    """An open connection. `events` holds every pushed event; a reply answers the request waiting for
    it, or lands in `unanswered` (a refused typing, a reply that came after its request gave up).

    Subclasses may override `handle_text` (every WebSocket message as text, before parsing: a load
    test can count frames without decoding them) and `handle_frame` (every decoded frame).
    """

    def __init__(self, ws: ClientConnection, *, keep_events: bool = True) -> None:
        self.ws = ws
        self.keep_events = keep_events
        self.frames = 0  # WebSocket messages received
        self.last_frame = 0.0  # time.perf_counter() when the last one arrived
        self.events: list[Frame] = []
        self.unanswered: deque[Frame] = deque(maxlen=1000)
        self.listeners: list[Callable[[Frame], None]] = []
        self._wakeup = asyncio.Event()  # set (and replaced) whenever an event arrives or the socket ends
        self._lock = asyncio.Lock()  # one request outstanding at a time: replies carry no request id
        self._waiter: _Waiter | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, *, token: str | None = None, **options: Any) -> Self:
        """Connect (with `token` added to the query string when given); HandshakeRefused on a non-101
        answer. `options` go to `websockets.asyncio.client.connect`."""
        return cls(await open_socket(url, token=token, **options))

    # ---- receiving ----------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in self.ws:
                    now = time.perf_counter()
                    self.frames += 1
                    self.last_frame = now
                    self.handle_text(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"), now)
        finally:
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.future.done():
                waiter.future.set_result(None)
            self.on_closed()
            self._wake()

    def handle_text(self, text: str, now: float) -> None:
        """Every WebSocket message as it arrives; the default decodes it and handles each frame."""
        for frame in protocol.decode(text):
            self.handle_frame(frame)

    def handle_frame(self, frame: Frame) -> None:
        """One frame (a batch's events one by one): the waiting request's reply, or an event, or kept."""
        for listener in list(self.listeners):
            listener(frame)
        waiter = self._waiter
        if waiter is not None and protocol.answers(frame, waiter.action, waiter.reply, waiter.client_msg_id):
            self._waiter = None
            if not waiter.future.done():
                waiter.future.set_result(frame)
        elif protocol.is_event(frame) or frame.get("type") not in protocol.reply_types() | {"gateway"}:
            if self.keep_events:
                self.events.append(frame)
        else:
            self.unanswered.append(frame)
        self._wake()

    def on_closed(self) -> None:
        """The connection ended (either side); subclasses may keep books."""

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    # ---- sending ------------------------------------------------------------------------------------

    async def send(self, action: str | Mapping[str, Any], /, **fields: Any) -> None:
        """Send a frame without waiting for a reply: `send("typing", channel="general")`, or a dict."""
        await self.send_raw(protocol.encode(_frame(action, fields)))

    async def send_raw(self, data: str | bytes) -> None:
        """Send exactly these bytes or this text, JSON or not (tests of malformed frames)."""
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise ConnectionLost("the connection is closed") from exc

    async def request(
        self,
        action: str | Mapping[str, Any],
        /,
        *,
        timeout: float = 10,
        reply: str | None = None,
        **fields: Any,
    ) -> Frame:
        """Send a frame and return its reply (an `error` or `gateway` frame too, as received):
        `await conn.request("join", channel="general")`. Works for any action: one this version does
        not know is answered by `reply`'s type when given, else by the first unknown frame type."""
        frame = _frame(action, fields)
        name = frame.get("action") if isinstance(frame.get("action"), str) else None
        expected = reply if reply is not None else protocol.REPLIES.get(name) if name else None
        client_msg_id = frame.get("clientMsgId") if name == "message" else None
        return await self._exchange(protocol.encode(frame), name, expected, client_msg_id, timeout)

    async def request_raw(self, data: str | bytes, *, timeout: float = 10) -> Frame:
        """Send raw data and return the next reply (an error, most likely)."""
        return await self._exchange(data, None, None, None, timeout)

    async def _exchange(
        self, data: str | bytes, action: str | None, reply: str | None, cmid: Any, timeout: float
    ) -> Frame:
        async with self._lock:
            if self._reader.done():
                raise ConnectionLost("the connection is closed")
            waiter = self._waiter = _Waiter(action, reply, cmid if isinstance(cmid, str) else None)
            try:
                await self.ws.send(data)
                result = await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            except ConnectionClosed as exc:
                raise ConnectionLost("closed while sending") from exc
            except TimeoutError as exc:
                raise RequestTimeout(f"no reply to {action or 'a raw frame'} within {timeout} s") from exc
            finally:
                if self._waiter is waiter:
                    self._waiter = None
            if result is None:
                raise ConnectionLost("closed before the reply came")
            return result

    # ---- events -------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 10) -> Frame:
        """The first pushed event (already received or still to come) that matches."""

        async def find() -> Frame:
            checked = 0
            while True:
                for event in self.events[checked:]:
                    if predicate(event):
                        return event
                checked = len(self.events)
                if self._reader.done():
                    raise ConnectionLost("closed before a matching event came")
                await self._wakeup.wait()

        return await asyncio.wait_for(find(), timeout)

    def of(self, kind: str) -> list[Frame]:
        """The pushed events of one type, in arrival order."""
        return [e for e in self.events if e.get("type") == kind]

    # ---- closing ------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._reader.done()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait until the connection ends; the close code the server sent."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.ws.close_code

    def abort(self) -> None:
        """Lose the connection as a network failure does: no close frame (the server sees no goodbye)."""
        self.ws.transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def open_socket(url: str, *, token: str | None = None, **options: Any) -> ClientConnection:
    """The WebSocket handshake alone (for a Connection subclass with a constructor of its own);
    HandshakeRefused on a non-101 answer."""
    try:
        return await connect(
            url if token is None else protocol.with_token(url, token), **(DEFAULT_OPTIONS | options)
        )
    except InvalidStatus as exc:
        raise HandshakeRefused(exc.response.status_code) from exc


def _frame(action: str | Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(action, str):
        return {"action": action, **fields}
    return {**action, **fields}
