"""Reactions end to end: real WebSocket clients, template.yaml served by the emulator (IAM enforced),
the counts item's stream record fanned out as `reaction` events."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Peers


def _reaction(name: str, count: int) -> Any:
    return lambda e: e["type"] == "reaction" and e["name"] == name and e["count"] == count


async def test_reactions_are_counted_fanned_out_and_shown_in_history(peers: Peers, workspace: str) -> None:
    # Given alice and bob in general, and a message of alice's
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    ack = await alice.request({"action": "message", "channel": "general", "text": "ship it?"})
    message_id = ack["id"]
    frame = {"action": "react", "channel": "general", "messageId": message_id, "name": "👍"}
    # When bob and then alice react with a thumbs up, and bob repeats his
    assert (await bob.request(frame))["changed"] is True
    for peer in (alice, bob):
        await peer.wait_for(_reaction("👍", 1))
    assert (await alice.request(frame))["changed"] is True
    assert (await bob.request(frame))["changed"] is False
    # Then both connections see the count reach 2, at version 2, from alice
    for peer in (alice, bob):
        event = await peer.wait_for(_reaction("👍", 2))
        assert (event["version"], event["user"]["id"], event["added"]) == (2, "alice", True)
    # And each one's history shows the count with its own `me`
    mine = await alice.request({"action": "history", "channel": "general"})
    (shown,) = [m for m in mine["messages"] if m["id"] == message_id]
    assert shown["reactions"] == [{"name": "👍", "count": 2, "me": True}]
    assert shown["reactionsVersion"] == 2
    # When bob takes his back, Then everyone gets the count of 1 at version 3
    assert (await bob.request(frame | {"remove": True}))["changed"] is True
    for peer in (alice, bob):
        event = await peer.wait_for(lambda e: e["type"] == "reaction" and e["version"] == 3)
        assert (event["count"], event["added"], event["user"]["id"]) == (1, False, "bob")
    his = await bob.request({"action": "history", "channel": "general"})
    (shown,) = [m for m in his["messages"] if m["id"] == message_id]
    assert shown["reactions"] == [{"name": "👍", "count": 1, "me": False}]


async def test_a_bad_reaction_name_and_an_unknown_message_are_refused(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    ack = await alice.request({"action": "message", "channel": "general", "text": "hello"})
    bad = await alice.request(
        {"action": "react", "channel": "general", "messageId": ack["id"], "name": "👍👍"}
    )
    assert (bad["type"], bad["code"]) == ("error", "bad_request")
    missing = {"action": "react", "channel": "general", "messageId": "17000000000000000", "name": "+1"}
    gone = await alice.request(missing)
    assert (gone["type"], gone["code"]) == ("error", "not_found")
