"""Direct messages, mentions and read state end to end: real WebSocket clients, the counters consumer
on the emulator's MessagesTable stream, IAM enforced."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.e2e.conftest import Peers
from tests.support.ws_client import Peer


async def _listing(peer: Peer, channel: str) -> dict[str, Any]:
    reply = await peer.request({"action": "channels"})
    assert reply["type"] == "channels", reply
    return next(c for c in reply["channels"] if c["id"] == channel)


async def _counted(
    peer: Peer, channel: str, unread: int, mentions: int, attempts: int = 100
) -> dict[str, Any]:
    """The listing of `channel` once the counters have caught up (they run from the stream, about a
    batching window after the messages were stored)."""
    for _ in range(attempts):
        entry = await _listing(peer, channel)
        if (entry.get("unread"), entry.get("mentions")) == (unread, mentions):
            return entry
        await asyncio.sleep(0.2)
    raise AssertionError(f"the counts never reached {unread}, {mentions}: {entry}")


async def test_a_dm_with_a_mention_is_counted_unread_and_marked_read_on_every_tab(
    peers: Peers, workspace: str
) -> None:
    # Given alice and bob (two tabs) connected to a workspace
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    bob_tab2 = await peers.joined("bob", workspace)
    # When alice opens a DM with bob, both join it, and she mentions him there
    opened = await alice.request({"action": "open_dm", "users": ["bob"]})
    assert opened["type"] == "dm_opened", opened
    dm = opened["channel"]["id"]
    assert [m["id"] for m in opened["channel"]["members"]] == ["alice", "bob"]
    again = await bob.request({"action": "open_dm", "users": ["alice"]})
    assert again["channel"]["id"] == dm
    for peer in (alice, bob):
        assert (await peer.request({"action": "join", "channel": dm}))["type"] == "joined"
    ack = await alice.request(
        {"action": "message", "channel": dm, "text": "@bob see this", "clientMsgId": "d-1"}
    )
    assert ack["type"] == "ack", ack
    # Then bob receives it with the mention
    event = await bob.wait_for(lambda e: e["type"] == "message" and e["channel"] == dm)
    assert event["mentions"] == ["bob"]
    # and once counted, his listing shows one unread message, one mention, in a DM
    entry = await _counted(bob, dm, 1, 1)
    assert entry["dm"] is True
    # When he marks it read on his first tab
    marked = await bob.request({"action": "mark_read", "channel": dm, "messageId": ack["id"]})
    assert marked == {
        "type": "marked_read",
        "channel": dm,
        "messageId": ack["id"],
        "unread": 0,
        "mentions": 0,
    }
    # Then his second tab hears of it, and nothing is unread any more
    read = await bob_tab2.wait_for(lambda e: e["type"] == "read")
    assert read == marked | {"type": "read"}
    assert (await _listing(bob, dm))["unread"] == 0
