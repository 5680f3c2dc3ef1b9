"""Interoperability with the real `wscat` client from npm (installed by `make test` with `npm ci`).

wscat is driven through a pseudo-terminal, as a person types into it: it only prints incoming frames
to a terminal (its `-x` mode sends but never prints replies).
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import shutil
import subprocess
import time

from tests.e2e.conftest import Target
from tests.support.template import ROOT
from tests.support.ws_client import REPLY_TYPES, Peer

WSCAT = ROOT / "node_modules" / ".bin" / "wscat"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def wscat_session(
    url: str, frames: list[dict[str, object]], timeout_s: float = 20
) -> list[dict[str, object]]:
    """Type each frame once the previous reply arrived; return every frame wscat printed as received."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(WSCAT), "-c", url, "--no-color"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    screen, pending, deadline = "", list(frames), time.monotonic() + timeout_s
    received: list[dict[str, object]] = []
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.1)[0]:
                screen += _ANSI.sub("", os.read(leader, 65536).decode(errors="replace"))
            received = [json.loads(m) for m in re.findall(r"< (\{.*?\})\s*(?:\r?\n|>|$)", screen)]
            replies = sum(1 for frame in received if frame.get("type") in REPLY_TYPES)
            if pending and "Connected" in screen and replies >= len(frames) - len(pending):
                os.write(leader, (json.dumps(pending.pop(0)) + "\r").encode())
            elif not pending and replies >= len(frames):
                break
    finally:
        process.kill()
        process.wait()
        os.close(leader)
    return received


async def test_wscat_joins_and_posts_a_message_others_receive(target: Target, workspace: str) -> None:
    assert WSCAT.exists(), "run `make install` / `npm ci` first: the wscat client is part of the test set-up"
    assert shutil.which("node"), "Node.js is needed for wscat"
    bob = await Peer.open(target.url("bob", workspace))
    await bob.request({"action": "join", "channel": "general"})

    frames: list[dict[str, object]] = [
        {"action": "join", "channel": "general"},
        {"action": "message", "channel": "general", "text": "hello from wscat", "clientMsgId": "w-1"},
    ]
    received = await asyncio.to_thread(wscat_session, target.url("alice", workspace), frames)

    assert [f["type"] for f in received if f.get("type") in REPLY_TYPES] == ["joined", "ack"]
    message = await bob.wait_for(lambda e: e["type"] == "message" and e.get("clientMsgId") == "w-1")
    assert message["user"]["id"] == "alice" and message["text"] == "hello from wscat"
    await bob.close()
