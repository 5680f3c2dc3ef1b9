"""A user's connection that survives: reconnects with backoff, re-joins with `since` (paging back with
`history` over a long outage), sends messages until acknowledged (the same clientMsgId every time, so
Parley stores each once), drops duplicate events, and sends heartbeats under API Gateway's idle timeout.

It mirrors clients/js's ParleyClient in asyncio terms: awaitable requests instead of callbacks,
`events()` as an async iterator, hooks a subclass may override to keep books (tests, load scripts).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self, cast

from websockets.asyncio.client import ClientConnection

from parley_client import protocol
from parley_client.connection import Connection, open_socket
from parley_client.errors import (
    ConnectionLost,
    HandshakeRefused,
    ParleyClientError,
    RequestTimeout,
    ServerError,
)
from parley_client.frames import (
    Ack,
    ChannelCreated,
    Channels,
    Event,
    Frame,
    Heartbeat,
    History,
    Invited,
    Joined,
    Left,
    Message,
    MessageEvent,
    PresencePage,
)

Status = Literal["idle", "connecting", "open", "waiting", "stopped"]
Source = Literal["event", "joined", "gap", "ack"]
TokenSource = str | Callable[[], str | Awaitable[str]]


@dataclass
class Options:
    # API Gateway closes a connection idle for 10 minutes, and Parley forgets one without a heartbeat
    # for 10 minutes: one every 4 to 5 minutes keeps it with two chances per window.
    heartbeat_s: float = 240.0
    heartbeat_jitter_s: float = 60.0
    # No frame at all this long after a heartbeat: the socket is half-open; drop it and reconnect.
    liveness_timeout_s: float = 20.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    reconnect: bool = True  # reconnect by itself when the connection ends
    connect_attempts: int | None = None  # per (re)connect; None: until stopped
    request_timeout_s: float = 30.0
    ack_timeout_s: float = 15.0  # then the message is sent again (same clientMsgId)
    send_deadline_s: float = 120.0  # send_message gives up after this long
    join_retries: int = 5  # a join answered `internal` (or the gateway's 500) is sent again
    seen_event_ids: int = 5000
    # passed to websockets' connect(): max_size, open_timeout, compression, ...
    connect_options: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """One channel's messages: unique by id, in id order (ids are 17-digit strings: string order is
    time order)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Message] = {}
        self.ids: list[str] = []

    def add(self, message: Message) -> bool:
        """True when the message is new."""
        if message["id"] in self.by_id:
            return False
        self.by_id[message["id"]] = message
        if not self.ids or self.ids[-1] < message["id"]:
            self.ids.append(message["id"])
        else:
            bisect.insort(self.ids, message["id"])
        return True

    @property
    def last_id(self) -> str | None:
        return self.ids[-1] if self.ids else None

    def messages(self) -> list[Message]:
        return [self.by_id[i] for i in self.ids]


class ChannelState:
    """What the client holds of one channel (addressed by its id)."""

    def __init__(self, channel: str) -> None:
        self.id = channel
        self.timeline = Timeline()
        self.presence: dict[str, str] = {}  # user id -> name
        self.subscribed = False  # wanted: joined again after every reconnect
        self.ready = False  # `joined` came on the current connection
        self.has_more = False  # older messages exist on the server


@dataclass
class Pending:
    """An own message until its ack (or a refusal)."""

    channel: str
    text: str
    client_msg_id: str
    state: Literal["pending", "failed"] = "pending"
    error: str | None = None


class _Link(Connection):
    """A connection of a ParleyClient: every frame goes to the client first."""

    def __init__(self, ws: ClientConnection, client: ParleyClient) -> None:
        self.client = client
        super().__init__(ws)

    def handle_frame(self, frame: Frame) -> None:
        self.client._received(self, frame)
        super().handle_frame(frame)

    def on_closed(self) -> None:
        self.client._lost(self)


class ParleyClient:
    """One user's connection, kept open. `async with ParleyClient(url, token) as client:` connects."""

    def __init__(
        self,
        url: str | Callable[[], str],
        token: TokenSource | None = None,
        *,
        options: Options | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self.options = options or Options()
        self.status: Status = "idle"
        self.channels: dict[str, ChannelState] = {}
        self.pending: dict[str, Pending] = {}
        self.seen = protocol.SeenIds(self.options.seen_event_ids)
        # error frames by code; failed handshakes as handshake:<status> (0: no HTTP answer)
        self.errors: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()  # close codes of ended connections
        self.reconnects = 0
        self.connection: Connection | None = None
        self.disconnected = asyncio.Event()  # set while no connection is open
        self.disconnected.set()
        self._listeners: list[Callable[[Frame], None]] = []
        self._queues: list[asyncio.Queue[Event | None]] = []
        self._changed = asyncio.Event()
        self._conn_lock = asyncio.Lock()
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._opened_once = False

    # ---- hooks (override to keep books) --------------------------------------------------------------

    def message_added(self, message: Message, *, new: bool, source: Source) -> None:
        """A message reached a timeline: pushed (`event`), with `joined`, paged back over a gap, or
        settled by its ack; `new` is False for a duplicate."""

    def connection_opened(self, connection: Connection) -> None:
        """A connection opened (before any channel is re-joined on it)."""

    def since(self, channel: ChannelState) -> str | None:
        """The `since` of a re-join: the newest message held."""
        return channel.timeline.last_id

    # ---- life ---------------------------------------------------------------------------------------

    def channel(self, channel: str) -> ChannelState:
        state = self.channels.get(channel)
        if state is None:
            state = self.channels[channel] = ChannelState(channel)
        return state

    def channel_lock(self, channel: str) -> asyncio.Lock:
        """Held while a message is sent to the channel: hold it to leave and re-join with no send between."""
        return self._channel_locks.setdefault(channel, asyncio.Lock())

    def on(self, listener: Callable[[Frame], None]) -> Callable[[], None]:
        """Call `listener` with every frame as received (replies and events, batches unpacked,
        duplicates included); returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def start(self) -> None:
        """Connect (retrying 429, 5xx and network errors with backoff; a refused token raises
        HandshakeRefused at once) and join the subscribed channels; then stay connected."""
        if self.status == "stopped":
            raise ParleyClientError("a stopped client does not start again")
        await self._ensure_open(first=True)
        if self.options.reconnect:
            self._supervise()

    async def stop(self) -> None:
        """Close for good."""
        self.status = "stopped"
        self._wake()
        for queue in self._queues:
            queue.put_nowait(None)  # ends every events() iterator
        for task in (self._supervisor, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def ensure_open(self) -> None:
        """Reconnect now (skipping any backoff wait) unless a connection is open; re-join with `since`."""
        await self._ensure_open(first=False)

    async def drop(self) -> None:
        """Close the connection from this side (the server runs `$disconnect`); with `reconnect` the
        client comes back by itself, else at the next `ensure_open`."""
        connection = self.connection
        if connection is not None:
            await connection.close()

    def abort(self) -> None:
        """Lose the connection as a network failure does: no close frame."""
        if self.connection is not None:
            self.connection.abort()

    def _supervise(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._reconnect_forever())

    async def _reconnect_forever(self) -> None:
        while self.status != "stopped":
            await self.disconnected.wait()
            # a jittered pause first, so a server restart does not see every client back at once
            await asyncio.sleep(
                protocol.backoff_delay(
                    1, base_s=self.options.backoff_base_s, cap_s=self.options.backoff_cap_s
                )
            )
            if self._stopped():
                return
            try:
                await self._ensure_open(first=False)
            except Exception:  # attempts ran out, or the re-joins failed: wait and go on trying
                if self._stopped():
                    return
                await asyncio.sleep(self.options.backoff_cap_s)

    async def _ensure_open(self, *, first: bool) -> None:
        async with self._conn_lock:
            if self.status == "stopped":
                raise ConnectionLost("the client is stopped")
            if self.connection is not None and self.connection.is_open and self.status == "open":
                return
            if self.connection is not None:
                await self.connection.close()
            connection = await self._connect_with_backoff(first=first)
            if self._stopped():  # stopped while connecting
                await connection.close()
                raise ConnectionLost("the client is stopped")
            if self._opened_once:
                self.reconnects += 1
            self._opened_once = True
            self.connection = connection
            self.disconnected.clear()
            self.connection_opened(connection)
            for state in list(self.channels.values()):
                state.ready = False
                if state.subscribed:
                    await self._rejoin(connection, state)
            self._set_status("open")
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self._heartbeat = asyncio.create_task(self._beat(connection))

    async def _rejoin(self, connection: Connection, state: ChannelState) -> None:
        try:
            await self._join_on(connection, state)
        except ServerError as exc:
            if protocol.retryable(exc.frame):
                connection.abort()  # the server is struggling: come back later and try again
                raise
            state.subscribed = False  # refused for good: the channel is gone, or we are no member
        except ParleyClientError:
            connection.abort()  # half joined: start over on a fresh connection
            raise

    async def _connect_with_backoff(self, *, first: bool) -> _Link:
        attempt = 0
        while True:
            attempt += 1
            self._set_status("connecting")
            try:
                return await self._open()
            except HandshakeRefused as exc:
                self.errors[f"handshake:{exc.status}"] += 1
                if first and exc.status != 429 and exc.status < 500:
                    self._set_status("idle")
                    raise  # a refused token is not fixed by waiting
                failure: Exception = exc
            except (OSError, TimeoutError) as exc:
                self.errors["handshake:0"] += 1
                failure = exc
            limit = self.options.connect_attempts
            if limit is not None and attempt >= limit:
                self._set_status("idle")
                raise ConnectionLost(f"could not connect after {attempt} attempts") from failure
            self._set_status("waiting")
            await asyncio.sleep(
                protocol.backoff_delay(
                    attempt, base_s=self.options.backoff_base_s, cap_s=self.options.backoff_cap_s
                )
            )

    async def _open(self) -> _Link:
        url = self._url() if callable(self._url) else self._url
        token: str | None = None
        if self._token is not None:
            value = self._token() if callable(self._token) else self._token
            token = await value if not isinstance(value, str) else value
        options = {"open_timeout": 30} | self.options.connect_options
        return _Link(await open_socket(url, token=token, **options), self)

    def _lost(self, link: _Link) -> None:
        """A connection ended: channels wait for their re-join, the supervisor reconnects."""
        if link.close_code is not None:
            self.closes[link.close_code] += 1
        if link is not self.connection:
            return
        for state in self.channels.values():
            state.ready = False
        if self.status != "stopped":
            self._set_status("waiting")
        self.disconnected.set()
        self._wake()

    async def _beat(self, connection: Connection) -> None:
        while connection.is_open:
            jitter = random.random() * self.options.heartbeat_jitter_s  # noqa: S311 (spread, not secrecy)
            await asyncio.sleep(self.options.heartbeat_s + jitter)
            if not connection.is_open:
                return
            sent = time.perf_counter()
            with contextlib.suppress(ConnectionLost):
                await connection.send("heartbeat")
            end = sent + self.options.liveness_timeout_s
            while connection.is_open and connection.last_frame < sent and time.perf_counter() < end:
                await asyncio.sleep(min(0.5, self.options.liveness_timeout_s / 10))
            if connection.is_open and connection.last_frame < sent:
                connection.abort()  # half-open: nothing came back
                return

    def _stopped(self) -> bool:
        return self.status == "stopped"  # a method, so a check after an await is not narrowed away

    def _set_status(self, status: Status) -> None:
        if self.status != "stopped":
            self.status = status
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _until(self, ready: Callable[[], Connection | None], timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            if self.status == "stopped":
                raise ConnectionLost("the client is stopped")
            connection = ready()
            if connection is not None:
                return connection
            if not self.options.reconnect and self.disconnected.is_set() and self._opened_once:
                await self.ensure_open()
                continue
            left = end - loop.time()
            if left <= 0:
                raise RequestTimeout("not connected in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _open_connection(self) -> Connection | None:
        c = self.connection
        return c if c is not None and c.is_open and self.status == "open" else None

    # ---- receiving ----------------------------------------------------------------------------------

    def _received(self, link: _Link, frame: Frame) -> None:
        for listener in list(self._listeners):
            listener(frame)
        kind = frame.get("type")
        if kind == "error":
            self.errors[str(frame.get("code", "?"))] += 1
        elif kind == "message":
            message = cast(MessageEvent, frame)
            if self._add(message, "event"):
                self._publish(message)
        elif kind in ("typing", "presence_diff"):
            if not self.seen.add(frame.get("id")):
                return
            if kind == "presence_diff":
                presence = self.channel(str(frame.get("channel"))).presence
                for user in frame.get("joins") or []:
                    presence[user["id"]] = user.get("name") or user["id"]
                for user in frame.get("leaves") or []:
                    presence.pop(user["id"], None)
            self._publish(cast(Event, frame))

    def _add(self, message: Message, source: Source) -> bool:
        new = self.channel(message["channel"]).timeline.add(message)
        if message.get("clientMsgId"):
            self.pending.pop(message["clientMsgId"], None)
        self.message_added(message, new=new, source=source)
        return new

    def _publish(self, event: Event) -> None:
        for queue in self._queues:
            queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Event]:
        """Pushed events as they come, each once: new messages (recovered ones too, after a reconnect),
        typing, presence diffs; the iteration ends when the client stops. Frames of types this version
        does not know go to `on` listeners."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while self.status != "stopped" and (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.remove(queue)

    # ---- requests -----------------------------------------------------------------------------------

    async def request(
        self,
        action: str | Mapping[str, Any],
        /,
        *,
        timeout: float | None = None,
        reply: str | None = None,
        **fields: Any,
    ) -> Frame:
        """Any action, typed helper or not: `await client.request("react", channel=..., ...)`. Waits
        for an open connection first; returns the reply as received (an `error` frame too)."""
        wait = self.options.request_timeout_s if timeout is None else timeout
        connection = await self._until(self._open_connection, wait)
        return await connection.request(action, timeout=wait, reply=reply, **fields)

    async def _expect(self, kind: str, action: str, **fields: Any) -> Frame:
        reply = await self.request(action, **fields)
        if reply.get("type") != kind:
            raise ServerError(reply)
        return reply

    async def join(self, channel: str) -> Joined:
        """Join (now, and again after every reconnect, with `since`); raises ServerError if refused."""
        state = self.channel(channel)
        state.subscribed = True
        connection = await self._until(self._open_connection, self.options.request_timeout_s)
        try:
            return await self._join_on(connection, state)
        except ServerError:
            state.subscribed = False
            raise

    async def _join_on(self, connection: Connection, state: ChannelState) -> Joined:
        frame: dict[str, Any] = {"action": "join", "channel": state.id}
        since = self.since(state)
        if since:
            frame["since"] = since
        reply: Frame = {}
        for _ in range(self.options.join_retries):
            reply = await connection.request(frame, timeout=self.options.request_timeout_s)
            # an overloaded integration answers "Internal server error": send it again, as a client would
            if reply.get("type") == "joined" or not protocol.retryable(reply):
                break
            self.errors["join:" + str(reply.get("code") or reply.get("message"))] += 1
            await asyncio.sleep(1)
        if reply.get("type") != "joined":
            raise ServerError(reply)
        joined = cast(Joined, reply)
        first = not state.timeline.ids
        for message in joined["messages"]:
            if self._add(message, "joined") and since:
                self._publish(cast(MessageEvent, {"type": "message", **message}))
        if first:
            state.has_more = len(joined["messages"]) >= protocol.JOIN_WITHOUT_SINCE
        state.presence = {u["id"]: u.get("name") or u["id"] for u in joined["presence"]}
        if since and not joined["recovered"]:
            await self._fill_gap(connection, state, since, joined["messages"])
        state.ready = True
        self._wake()
        return joined

    async def _fill_gap(
        self, connection: Connection, state: ChannelState, since: str, newest: list[Message]
    ) -> None:
        """More than a recovery's worth was missed: page back from the oldest message `joined` gave
        until `since`."""
        after = [m["id"] for m in newest if m["id"] > since]
        before = after[0] if after else None
        while before and before > since:
            frame = {
                "action": "history",
                "channel": state.id,
                "before": before,
                "limit": protocol.HISTORY_MAX,
            }
            page = await connection.request(frame, timeout=self.options.request_timeout_s)
            if page.get("type") != "history":
                raise ServerError(page)
            for message in page["messages"]:
                if message["id"] > since and self._add(message, "gap"):
                    self._publish(cast(MessageEvent, {"type": "message", **message}))
            if not page["hasMore"] or not page["messages"]:
                break
            before = page["messages"][0]["id"]

    async def leave(self, channel: str, *, membership: bool = False, user: str | None = None) -> Left:
        """Leave (and with `membership`, stop being a member; with `user`, remove that member)."""
        fields: dict[str, Any] = {"channel": channel}
        if membership:
            fields["membership"] = True
        if user is not None:
            fields["user"] = user
        if user is None:
            state = self.channel(channel)
            state.subscribed = state.ready = False
            for entry in [p for p in self.pending.values() if p.channel == channel]:
                entry.state, entry.error = "failed", f"not sent: left {channel}"
            self._wake()  # sends waiting for this channel give up
        return cast(Left, await self._expect("left", "leave", **fields))

    async def send_message(
        self,
        channel: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        thread_id: str | None = None,
        deadline_s: float | None = None,
    ) -> Ack:
        """Send until acknowledged, with the same clientMsgId through rate limits, conflicts, server
        errors and reconnects (Parley stores it once); ServerError if refused for good."""
        problem = protocol.text_problem(text)
        if problem:
            raise ValueError(problem)
        state = self.channel(channel)
        if not state.subscribed:
            raise ParleyClientError(f"join {channel} before sending to it")
        cmid = client_msg_id or protocol.new_client_msg_id()
        entry = self.pending[cmid] = Pending(channel, text, cmid)
        frame: dict[str, Any] = {"action": "message", "channel": channel, "text": text, "clientMsgId": cmid}
        if thread_id is not None:
            frame["threadId"] = thread_id
        loop = asyncio.get_running_loop()
        end = loop.time() + (self.options.send_deadline_s if deadline_s is None else deadline_s)

        def channel_ready() -> Connection | None:
            if not state.subscribed:  # left meanwhile: it would wait for a join that never comes
                entry.state, entry.error = "failed", f"not sent: left {channel}"
                raise ParleyClientError(entry.error)
            return self._open_connection() if state.ready else None

        while loop.time() < end:
            try:
                connection = await self._until(channel_ready, max(0.0, end - loop.time()))
                async with self.channel_lock(channel):
                    reply = await connection.request(frame, timeout=self.options.ack_timeout_s)
            except RequestTimeout:
                continue  # no ack in time: send it again, same clientMsgId
            except ConnectionLost:
                if self.status == "stopped":
                    raise
                continue  # the next connection sends it again
            if reply.get("type") == "ack":
                return self._acked(cast(Ack, reply), channel, text, cmid)
            await self._before_resend(reply, connection, state, entry)
        entry.state, entry.error = "failed", "never acknowledged"
        raise RequestTimeout(f"{text[:40]!r} was never acknowledged")

    def _acked(self, ack: Ack, channel: str, text: str, cmid: str) -> Ack:
        message: Message = {
            "id": ack["id"],
            "channel": channel,
            "ts": ack["ts"],
            "user": {"id": "", "name": ""},  # the event, when it comes, carries who
            "text": text,
            "clientMsgId": cmid,
        }
        self._add(message, "ack")
        return ack

    async def _before_resend(
        self, reply: Frame, connection: Connection, state: ChannelState, entry: Pending
    ) -> None:
        """Wait as the refusal asks before sending the message again, or raise if it cannot succeed."""
        code = reply.get("code")
        if code == "rate_limited":
            await asyncio.sleep(max(100, int(reply.get("retryAfterMs") or 1000)) / 1000)
        elif code == "conflict" or protocol.retryable(reply):
            # the first copy is still being stored, or the function failed: ask again shortly
            await asyncio.sleep(0.2)
        elif code == "not_joined":  # the server forgot this connection's subscription
            state.ready = False
            with contextlib.suppress(ConnectionLost, RequestTimeout):
                await self._join_on(connection, state)
        else:
            entry.state, entry.error = "failed", str(reply.get("message") or code)
            raise ServerError(reply)

    async def typing(self, channel: str) -> None:
        """Say this user is typing (no reply; the server sends at most one a user every 2 s)."""
        connection = self._open_connection()
        if connection is not None:
            with contextlib.suppress(ConnectionLost):
                await connection.send("typing", channel=channel)

    async def history(self, channel: str, *, before: str | None = None, limit: int = 50) -> History:
        fields: dict[str, Any] = {"channel": channel, "limit": limit}
        if before is not None:
            fields["before"] = before
        page = cast(History, await self._expect("history", "history", **fields))
        for message in page["messages"]:
            self._add(message, "gap")
        return page

    async def presence(
        self, channel: str, *, after: str | None = None, limit: int | None = None
    ) -> PresencePage:
        fields: dict[str, Any] = {"channel": channel}
        if after is not None:
            fields["after"] = after
        if limit is not None:
            fields["limit"] = limit
        return cast(PresencePage, await self._expect("presence", "presence", **fields))

    async def heartbeat(self) -> Heartbeat:
        return cast(Heartbeat, await self._expect("heartbeat", "heartbeat"))

    async def create_channel(
        self, name: str, *, private: bool = False, invite: Literal["members", "creator"] = "members"
    ) -> ChannelCreated:
        frame = await self._expect(
            "channel_created", "create_channel", name=name, private=private, invite=invite
        )
        return cast(ChannelCreated, frame)

    async def invite(self, channel: str, user: str) -> Invited:
        return cast(Invited, await self._expect("invited", "invite", channel=channel, user=user))

    async def list_channels(self, *, after: str | None = None) -> Channels:
        """One page of the channel list (`next` names where the following one starts)."""
        fields = {} if after is None else {"after": after}
        return cast(Channels, await self._expect("channels", "channels", **fields))
