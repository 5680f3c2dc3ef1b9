"""The reliability suites' user: parley_client's ParleyClient (dedupe by id, resend with the same
clientMsgId, reconnect and re-join with `since`, gap filled with `history`) plus the books a
reliability test needs: every message shown (once), raw duplicates, per-connection order of live
events, error frames by code and close codes (the client's own counters), typing events seen.

A message counts as shown when the server delivered it (an event, `joined` or a `history` page), not
when its ack came: a sender must receive its own message through the fan-out like everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from parley_client import Connection, ConnectionLost, Frame, Message, Options, ParleyClient
from parley_client.client import ChannelState, Source

_ids = itertools.count(1)


def options() -> Options:
    """Quick reconnects and patient requests: the suites overload a 2-core machine on purpose."""
    return Options(
        backoff_base_s=0.2,
        backoff_cap_s=2.0,
        connect_attempts=40,
        request_timeout_s=90.0,
        ack_timeout_s=90.0,
        reconnect=False,  # until `supervise()`: some tests lose a connection on purpose and look
        connect_options={"open_timeout": 60, "max_size": 2**22, "close_timeout": 2},
    )


class ChatClient(ParleyClient):
    def __init__(self, url: Callable[[], str], user: str, channels: list[str]) -> None:
        super().__init__(url, options=options())
        self.user = user
        self.channel_ids = channels
        self.shown: dict[str, Message] = {}  # message id -> message, once each
        self.last_id: dict[str, str] = {}  # channel -> greatest id shown
        self.raw_duplicates = 0
        self.order_violations: list[tuple[str, str]] = []
        self.typing_seen = 0
        self._live_last: dict[str, str] = {}  # per connection and channel: last live message id
        self.closed_by_server = self.disconnected
        self.on(self._on_frame)

    # ---- the books ---------------------------------------------------------------------------

    def connection_opened(self, connection: Connection) -> None:
        self._live_last = {}

    def since(self, channel: ChannelState) -> str | None:
        return self.last_id.get(channel.id)

    def message_added(self, message: Message, *, new: bool, source: Source) -> None:
        if source == "ack":
            return
        if message["id"] in self.shown:
            self.raw_duplicates += 1
            return
        self.shown[message["id"]] = message
        channel = message["channel"]
        if message["id"] > self.last_id.get(channel, ""):
            self.last_id[channel] = message["id"]

    def _on_frame(self, frame: Frame) -> None:
        if frame.get("type") == "typing":
            self.typing_seen += 1
        if frame.get("type") != "message":
            return
        channel, mid = frame["channel"], frame["id"]
        previous = self._live_last.get(channel, "")
        # a redelivered message (at least once) may come after later ones: a duplicate, not disorder
        if mid < previous and mid not in self.shown:
            self.order_violations.append((previous, mid))
        elif mid > previous:
            self._live_last[channel] = mid

    # ---- what the suites call ----------------------------------------------------------------

    async def open(self) -> None:
        """Connect (retrying 429/5xx with backoff) and join every channel, `since` what was shown."""
        for channel in self.channel_ids:
            self.channel(channel).subscribed = True
        await self.start()

    async def supervise(self) -> None:
        """Run alongside: whenever the connection ends, come back (until `close`)."""
        self.options.reconnect = True
        self._supervise()
        while self.status != "stopped":
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self.stop()

    async def send_only(self, frame: dict[str, Any]) -> None:
        connection = self.connection
        if connection is not None and connection.is_open:
            with contextlib.suppress(ConnectionLost):
                await connection.send(frame)

    async def say(self, channel: str, text: str, *, deadline_s: float = 120) -> dict[str, Any]:
        """Send until acknowledged: the same clientMsgId through rate limits, conflicts and reconnects."""
        ack = await self.send_message(
            channel, text, client_msg_id=f"{self.user}-{next(_ids)}", deadline_s=deadline_s
        )
        return dict(ack)

    def missing(self, acked: dict[str, str]) -> list[str]:
        """Acknowledged message ids (id -> channel) of this client's channels it has not shown."""
        return [
            mid for mid, channel in acked.items() if channel in self.channel_ids and mid not in self.shown
        ]

    async def wait_for_all(self, acked: dict[str, str], timeout: float) -> list[str]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (missing := self.missing(acked)) and loop.time() < end:
            await asyncio.sleep(0.2)
        return missing
