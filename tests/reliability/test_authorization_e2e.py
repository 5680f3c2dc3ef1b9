"""The authorization matrix end to end, through the emulator: another workspace's channels, a private
channel without membership, a channel not joined on this connection, a body claiming another identity.
Every refusal answers its documented code and writes nothing to any table; a claimed identity is
ignored (tests/integration/test_authorization_matrix.py runs the same matrix handler by handler)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.reliability.conftest import Running, report
from tests.support.ws_client import Peer

TABLES = ("StateTable", "MessagesTable", "IdempotencyTable")
CASES: list[str] = []


def world(emu: Running, workspace: str) -> dict[str, list[str]]:
    """Every item of the three tables that mentions the workspace (eve's names it too), and all of
    IdempotencyTable (its keys are hashes). A write by a handler is there before its reply is sent."""
    items = {t: [json.dumps(i, sort_keys=True) for i in emu.table_items(t)] for t in TABLES}
    return {
        t: sorted(i for i in found if t == "IdempotencyTable" or workspace in i) for t, found in items.items()
    }


async def joined(emu: Running, user: str, workspace: str, *channels: str) -> Peer:
    peer = await Peer.open(emu.url(user, workspace))
    for channel in channels:
        reply = await peer.request({"action": "join", "channel": channel}, timeout=30)
        assert reply["type"] == "joined", reply
    return peer


async def refused(emu: Running, peer: Peer, frame: dict[str, Any], code: str, workspace: str) -> None:
    """The frame is answered with `code` (typing too: its only reply is an error) and writes nothing."""
    before = world(emu, workspace)
    reply = await peer.request(frame, timeout=30)
    assert reply["type"] == "error" and reply["code"] == code, (frame, reply)
    assert reply.get("action") == frame["action"]
    assert world(emu, workspace) == before, f"{frame} wrote something"
    CASES.append(f"{frame['action']}:{code}")


@pytest.fixture
async def acme(emu: Running, workspace: str) -> AsyncIterator[dict[str, Any]]:
    """alice and bob of one workspace; a public channel `plans` and a private `board` (alice only)."""
    alice = await joined(emu, "alice", workspace, "general")
    ids: dict[str, str] = {}
    for name, private in (("plans", False), ("board", True)):
        reply = await alice.request(
            {"action": "create_channel", "name": name, "private": private}, timeout=30
        )
        assert reply["type"] == "channel_created", reply
        ids[name] = reply["channel"]["id"]  # a private channel's id is `board.<suffix>`
    board = ids["board"]
    assert (await alice.request({"action": "join", "channel": board}, timeout=30))["type"] == "joined"
    bob = await joined(emu, "bob", workspace, "general")
    yield {"alice": alice, "bob": bob, "workspace": workspace, "board": board}
    await alice.close()
    await bob.close()


async def test_another_workspace_sees_nothing(emu: Running, acme: dict[str, Any]) -> None:
    # GIVEN eve of another workspace, whose tokens cannot name acme
    ws = acme["workspace"]  # eve's workspace name contains it too: both are watched
    eve = await joined(emu, "eve", ws + "-evil", "general")
    await emu.drain()
    # WHEN she joins, reads, posts, types in and invites to acme's channels / THEN not found or not joined
    for channel in ("plans", acme["board"]):
        await refused(emu, eve, {"action": "join", "channel": channel}, "not_found", ws)
        await refused(emu, eve, {"action": "invite", "channel": channel, "user": "eve"}, "not_found", ws)
        await refused(emu, eve, {"action": "history", "channel": channel}, "not_joined", ws)
        await refused(emu, eve, {"action": "presence", "channel": channel}, "not_joined", ws)
        await refused(emu, eve, {"action": "message", "channel": channel, "text": "hi"}, "not_joined", ws)
        await refused(emu, eve, {"action": "typing", "channel": channel}, "not_joined", ws)
    # and a frame naming acme's workspace acts in her own (plans does not exist there)
    await refused(emu, eve, {"action": "join", "channel": "plans", "workspace": ws}, "not_found", ws)
    await eve.close()


async def test_private_channel_without_membership(emu: Running, acme: dict[str, Any]) -> None:
    bob, ws, board = acme["bob"], acme["workspace"], acme["board"]
    await emu.drain()
    await refused(emu, bob, {"action": "join", "channel": board}, "not_found", ws)
    await refused(emu, bob, {"action": "invite", "channel": board, "user": "bob"}, "not_found", ws)
    await refused(emu, bob, {"action": "history", "channel": board}, "not_joined", ws)
    await refused(emu, bob, {"action": "presence", "channel": board}, "not_joined", ws)
    await refused(emu, bob, {"action": "message", "channel": board, "text": "let me in"}, "not_joined", ws)
    listing = await bob.request({"action": "channels"}, timeout=30)
    assert board not in [c["id"] for c in listing["channels"]]
    assert "board" not in [c["name"] for c in listing["channels"]]
    # and creating a channel named board answers as for any fresh name: created, its existence untold
    created = await bob.request({"action": "create_channel", "name": "board"}, timeout=30)
    assert created["type"] == "channel_created" and created["channel"]["id"] == "board", created


async def test_channel_not_joined_on_this_connection(emu: Running, acme: dict[str, Any]) -> None:
    # GIVEN bob joined general on one connection; his second connection has joined nothing
    ws = acme["workspace"]
    tab = await Peer.open(emu.url("bob", ws))
    await emu.drain()
    for frame in (
        {"action": "message", "channel": "general", "text": "from the other tab"},
        {"action": "typing", "channel": "general"},
        {"action": "history", "channel": "general"},
        {"action": "presence", "channel": "general"},
    ):
        await refused(emu, tab, frame, "not_joined", ws)
    await tab.close()


async def test_a_body_claiming_another_identity_is_ignored(emu: Running, acme: dict[str, Any]) -> None:
    alice, bob, ws = acme["alice"], acme["bob"], acme["workspace"]
    # WHEN bob's frame claims to be alice, of another workspace
    claim = {
        "userId": "alice",
        "user": {"id": "alice", "name": "Alice"},
        "workspace": "elsewhere",
        "sub": "alice",
    }
    ack = await bob.request(
        {"action": "message", "channel": "general", "text": "it's me", **claim}, timeout=30
    )
    assert ack["type"] == "ack", ack
    # THEN alice receives it as bob's, and it is stored as bob's in bob's workspace
    event = await alice.wait_for(lambda e: e["type"] == "message" and e["id"] == ack["id"], 30)
    assert event["user"]["id"] == "bob"
    pk = f"WS#{acme['workspace']}#CHAN#general"
    stored = [
        i
        for i in emu.table_items("MessagesTable")
        if i["PK"]["S"] == pk and i["SK"]["S"] == f"MSG#{ack['id']}"
    ]
    assert len(stored) == 1 and stored[0]["userId"]["S"] == "bob"
    # (the unread counters count that message a moment later, off the write path: let them settle
    # before the next refusal compares the tables)
    for _ in range(300):
        counts = [
            i
            for i in emu.table_items("MessagesTable")
            if i["PK"]["S"] == pk and i["SK"]["S"] == "COUNT" and i.get("lastId", {}).get("S") == ack["id"]
        ]
        if counts:
            break
        await asyncio.sleep(0.05)
    assert counts, "the counters never counted the message"
    # and bob cannot invite himself into alice's private channel by claiming to be her
    board = acme["board"]
    await refused(emu, bob, {**claim, "action": "invite", "channel": board, "user": "bob"}, "not_found", ws)
    report("authorization-e2e", refusals=len(CASES), by_case=sorted(set(CASES)))
