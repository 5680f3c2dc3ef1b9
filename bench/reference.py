"""An in-memory reference server: protocol v1's hot path in one process on `websockets`, no AWS.

It is the physical limit of a Python chat server on this machine, driven by the same bench clients
as Parley: the same `?token=` JWTs (HS256, the bench secret, checked with PyJWT as Parley's
authorizer checks them), `join` answered `joined`, `message` answered `ack` and broadcast to every
member of the channel as a `message` event (the sender included, as Parley does), `typing`
broadcast to the others, `heartbeat` answered. No history, presence diffs or persistence: what it
leaves out only makes it faster, which is what a limit should be.

`python -m bench.reference --port P --secret S` serves until killed and prints its port when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response


class Reference:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.channels: dict[tuple[str, str], set[ServerConnection]] = defaultdict(set)
        self.users: dict[ServerConnection, dict[str, str]] = {}
        self._ids = itertools.count(int(time.time() * 1000) << 20)

    def authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        token = (parse_qs(urlsplit(request.path).query).get("token") or [""])[0]
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
        except jwt.PyJWTError:
            return connection.respond(401, "Unauthorized\n")
        user = {"id": str(claims["sub"]), "name": str(claims.get("name") or claims["sub"])}
        self.users[connection] = user | {"workspace": str(claims.get("workspace", ""))}
        return None

    async def handle(self, connection: ServerConnection) -> None:
        joined: set[tuple[str, str]] = set()
        try:
            async for raw in connection:
                reply = self.on_frame(connection, raw, joined)
                if reply is not None:
                    await connection.send(reply)
        finally:
            for key in joined:
                self.channels[key].discard(connection)
            self.users.pop(connection, None)

    def on_frame(
        self, connection: ServerConnection, raw: str | bytes, joined: set[tuple[str, str]]
    ) -> str | None:
        try:
            frame = json.loads(raw)
            action, channel = frame.get("action"), str(frame.get("channel", ""))
        except (ValueError, AttributeError):
            return json.dumps({"type": "error", "code": "bad_request", "message": "not a JSON object"})
        user = self.users[connection]
        key = (user["workspace"], channel)
        if action == "join":
            self.channels[key].add(connection)
            joined.add(key)
            return json.dumps(
                {
                    "type": "joined",
                    "channel": channel,
                    "messages": [],
                    "recovered": True,
                    "presence": [],
                    "presenceMore": False,
                }
            )
        if action == "message" and key in joined:
            ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            message_id = str(next(self._ids))
            event = {
                "type": "message",
                "id": message_id,
                "channel": channel,
                "ts": ts,
                "user": {"id": user["id"], "name": user["name"]},
                "text": frame.get("text", ""),
                "clientMsgId": frame.get("clientMsgId"),
            }
            broadcast(self.channels[key], json.dumps(event))
            return json.dumps(
                {"type": "ack", "clientMsgId": frame.get("clientMsgId"), "id": message_id, "ts": ts}
            )
        if action == "typing" and key in joined:
            typing = json.dumps(
                {"type": "typing", "channel": channel, "user": {"id": user["id"], "name": user["name"]}}
            )
            broadcast(self.channels[key] - {connection}, typing)
            return None
        if action == "heartbeat":
            return json.dumps({"type": "heartbeat"})
        return json.dumps({"type": "error", "code": "bad_request", "message": f"unknown action {action!r}"})


async def main(port: int, secret: str) -> None:
    reference = Reference(secret)
    async with serve(
        reference.handle, "127.0.0.1", port, process_request=reference.authorize, compression=None
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(bound, flush=True)
        await asyncio.get_running_loop().create_future()


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", required=True)
    args: Any = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):  # how the bench stops it
        asyncio.run(main(args.port, args.secret))


if __name__ == "__main__":
    cli()
