"""A small in-process stand-in for Parley's WebSocket API (websockets `serve` on 127.0.0.1, port 0):
enough of protocol v1 to test the Python client's behaviour, with knobs for the faults it must
survive (a lost ack, duplicated and batched events, a dropped connection, a silent heartbeat)."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

GOOD_TOKEN = "good-token"


@dataclass
class FakeParley:
    url: str = ""
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> stored, id order
    by_client_msg_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)  # every frame, from every connection
    tokens: list[str] = field(default_factory=list)  # the token of every handshake
    connections: list[ServerConnection] = field(default_factory=list)
    subscribers: dict[str, set[ServerConnection]] = field(default_factory=dict)
    # knobs
    lose_acks: int = 0  # close the connection instead of acking this many messages (stored anyway)
    rate_limit_next: int = 0  # answer this many messages `rate_limited` first
    duplicate_events: bool = False  # push every message event twice, the second inside a batch
    silent_heartbeats: bool = False  # never answer a heartbeat
    refuse_messages: bool = False  # answer every message bad_request
    recovery_max: int = 100  # a join with `since` recovers at most this many (then recovered: false)
    _ids: Any = field(default_factory=lambda: itertools.count(17_900_000_000_000_001))

    def store(self, channel: str, text: str, user: str = "carol", cmid: str | None = None) -> dict[str, Any]:
        message = {
            "id": str(next(self._ids)),
            "channel": channel,
            "ts": "2026-12-02T03:00:00.000Z",
            "user": {"id": user, "name": user.title()},
            "text": text,
        }
        if cmid:
            message["clientMsgId"] = cmid
            self.by_client_msg_id[cmid] = message
        self.messages.setdefault(channel, []).append(message)
        return message

    async def push(self, channel: str, message: dict[str, Any]) -> None:
        event = json.dumps({"type": "message", **message})
        for ws in list(self.subscribers.get(channel, ())):
            with contextlib.suppress(Exception):
                await ws.send(event)
                if self.duplicate_events:
                    await ws.send('{"type":"batch","events":[' + event + "]}")

    async def post(self, channel: str, text: str, user: str = "carol") -> dict[str, Any]:
        """Someone else posts: stored and pushed to the channel's connections."""
        message = self.store(channel, text, user)
        await self.push(channel, message)
        return message

    async def drop_all(self, code: int = 1001) -> None:
        for ws in list(self.connections):
            with contextlib.suppress(Exception):
                await ws.close(code)

    def frames(self, action: str) -> list[dict[str, Any]]:
        return [f for f in self.received if f.get("action") == action]

    # ---- the server ---------------------------------------------------------------------------------

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        token = parse_qs(urlparse(request.path).query).get("token", [""])[0]
        self.tokens.append(token)
        if not token.startswith(GOOD_TOKEN):
            return Response(401, "Unauthorized", Headers(), b"Unauthorized\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.received.append(frame)
                reply = await self._answer(ws, frame)
                if reply is not None:
                    await ws.send(json.dumps(reply))
        except Exception:  # the client went away
            pass
        finally:
            for subs in self.subscribers.values():
                subs.discard(ws)

    async def _answer(self, ws: ServerConnection, frame: dict[str, Any]) -> dict[str, Any] | None:
        action, channel = frame.get("action"), frame.get("channel", "")
        if action == "join":
            self.subscribers.setdefault(channel, set()).add(ws)
            stored = self.messages.get(channel, [])
            since = frame.get("since")
            if since is None:
                return {
                    "type": "joined",
                    "channel": channel,
                    "messages": stored[-50:],
                    "recovered": True,
                    "presence": [],
                    "presenceMore": False,
                }
            after = [m for m in stored if m["id"] > since]
            return {
                "type": "joined",
                "channel": channel,
                "messages": after[-self.recovery_max :],
                "recovered": len(after) <= self.recovery_max,
                "presence": [],
                "presenceMore": False,
            }
        if action == "leave":
            self.subscribers.get(channel, set()).discard(ws)
            return {"type": "left", "channel": channel}
        if action == "history":
            before, limit = frame.get("before"), frame.get("limit", 50)
            older = [m for m in self.messages.get(channel, []) if before is None or m["id"] < before]
            return {
                "type": "history",
                "channel": channel,
                "messages": older[-limit:],
                "hasMore": len(older) > limit,
            }
        if action == "message":
            return await self._message(ws, frame)
        if action == "heartbeat":
            return None if self.silent_heartbeats else {"type": "heartbeat", "ts": "2026-12-02T03:00:00.000Z"}
        if action == "echo":  # an action this client version has never heard of
            return {"type": "echoed", "value": frame.get("value")}
        if action == "typing":
            return None
        return {
            "type": "error",
            "code": "unknown_action",
            "message": f"unknown action {action}",
            "requestId": "r-1",
        }

    async def _message(self, ws: ServerConnection, frame: dict[str, Any]) -> dict[str, Any] | None:
        channel, cmid = frame["channel"], frame.get("clientMsgId")
        if ws not in self.subscribers.get(channel, set()):
            return {
                "type": "error",
                "code": "not_joined",
                "message": "join first",
                "action": "message",
                "requestId": "r-2",
            }
        if self.refuse_messages:
            return {
                "type": "error",
                "code": "bad_request",
                "message": "no",
                "action": "message",
                "requestId": "r-4",
            }
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return {
                "type": "error",
                "code": "rate_limited",
                "message": "slow down",
                "action": "message",
                "retryAfterMs": 100,
                "requestId": "r-3",
            }
        message = self.by_client_msg_id.get(cmid or "")
        if message is None:  # stored once per clientMsgId, as Parley does
            message = self.store(channel, frame["text"], "alice", cmid)
            await self.push(channel, message)
        if self.lose_acks:
            self.lose_acks -= 1
            await ws.close(1011)  # the ack is lost with the connection
            return None
        return {"type": "ack", "clientMsgId": cmid, "id": message["id"], "ts": message["ts"]}


@contextlib.asynccontextmanager
async def fake_parley() -> AsyncIterator[FakeParley]:
    fake = FakeParley()
    async with serve(fake._serve, "127.0.0.1", 0, process_request=fake._handshake) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/prod"
        yield fake
