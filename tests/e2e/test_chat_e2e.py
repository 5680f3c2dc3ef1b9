"""Parley end to end: real WebSocket clients against template.yaml served by the emulator (or a stack)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from parley_client import HandshakeRefused
from tests.e2e.conftest import Peers, Target
from tests.support.ws_client import Peer


def _joins(user: str, event: dict[str, Any]) -> bool:
    return event["type"] == "presence_diff" and user in [u["id"] for u in event["joins"]]


async def test_message_reaches_every_subscribed_connection_in_order(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    bob_tab2 = await peers.joined("bob", workspace)
    acks = [
        await alice.request(
            {"action": "message", "channel": "general", "text": f"m{i}", "clientMsgId": f"c{i}"}
        )
        for i in range(5)
    ]
    assert [a["type"] for a in acks] == ["ack"] * 5
    for peer in (alice, bob, bob_tab2):
        await peer.wait_for(lambda e: e["type"] == "message" and e["text"] == "m4")
        texts = [e["text"] for e in peer.of("message")]
        assert texts == ["m0", "m1", "m2", "m3", "m4"]  # once each, in id order
        assert [e["id"] for e in peer.of("message")] == [a["id"] for a in acks]


async def test_workspaces_are_isolated(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    eve = await peers.joined("eve", workspace + "-other")
    await alice.request({"action": "message", "channel": "general", "text": "acme only"})
    await eve.request({"action": "message", "channel": "general", "text": "other only"})
    await alice.wait_for(lambda e: e["type"] == "message")
    await eve.wait_for(lambda e: e["type"] == "message")
    await asyncio.sleep(0.5)
    assert [e["text"] for e in alice.of("message")] == ["acme only"]
    assert [e["text"] for e in eve.of("message")] == ["other only"]


@pytest.mark.parametrize("token", [None, "", "not-a-jwt"])
async def test_handshake_refuses_missing_or_bad_tokens_with_401(target: Target, token: str | None) -> None:
    url = target.ws_url if token is None else f"{target.ws_url}?token={token}"
    with pytest.raises(HandshakeRefused) as refused:
        await Peer.open(url)
    assert refused.value.status == 401


async def test_handshake_refuses_an_expired_token(peers: Peers, target: Target, workspace: str) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        await peers.open(target.url("alice", workspace, expires_in_s=-120))
    assert refused.value.status == 401


async def test_typing_is_debounced_and_not_echoed(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    for _ in range(5):
        await alice.send({"action": "typing", "channel": "general"})
    await bob.wait_for(lambda e: e["type"] == "typing")
    await asyncio.sleep(1.0)
    assert len(bob.of("typing")) == 1
    assert alice.of("typing") == []
    # Controls: bob's typing does reach alice, and alice's reaches bob again once the window is over
    await bob.send({"action": "typing", "channel": "general"})
    await alice.wait_for(lambda e: e["type"] == "typing" and e["user"]["id"] == "bob")
    assert [e["user"]["id"] for e in alice.of("typing")] == ["bob"]
    for _ in range(40):
        await alice.send({"action": "typing", "channel": "general"})
        await asyncio.sleep(0.25)
        if len(bob.of("typing")) > 1:
            break
    assert len(bob.of("typing")) == 2


async def test_presence_join_then_leave_after_grace(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    diff = await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["joins"]
    )
    assert diff["leaves"] == []
    await bob.close()
    leave = await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["leaves"], timeout=15
    )
    assert leave["joins"] == []


async def test_presence_pages_through_the_present_users(peers: Peers, workspace: str) -> None:
    # GIVEN alice, then carol and bob joined general (alice has seen them arrive)
    present = [await peers.joined(user, workspace) for user in ("alice", "carol", "bob")]
    for user in ("carol", "bob"):
        await present[0].wait_for(partial(_joins, user))
    # WHEN alice reads presence a page of two at a time
    first = await present[0].request({"action": "presence", "channel": "general", "limit": 2})
    rest = await present[0].request({"action": "presence", "channel": "general", "after": first["next"]})
    # THEN the pages list the three in id order, and the last one has no next
    assert [u["id"] for u in first["users"] + rest["users"]] == ["alice", "bob", "carol"]
    assert first["next"] == "bob" and rest["next"] is None
    assert first["users"][0] == {"id": "alice", "name": "Alice"}


async def test_quick_rejoin_broadcasts_no_leave(peers: Peers, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["joins"]
    )
    await bob.request({"action": "leave", "channel": "general"})
    await bob.request({"action": "join", "channel": "general"})  # inside the (1 s) grace
    await asyncio.sleep(4)
    assert all(not e["leaves"] for e in alice.of("presence_diff"))
    # Control: a real leave does reach alice
    await bob.close()
    await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["leaves"], timeout=15
    )


async def test_history_pages_back_and_since_recovers(peers: Peers, target: Target, workspace: str) -> None:
    alice = await peers.joined("alice", workspace)
    ids = [
        (await alice.request({"action": "message", "channel": "general", "text": f"h{i}"}))["id"]
        for i in range(6)
    ]
    page = await alice.request({"action": "history", "channel": "general", "limit": 4})
    older = await alice.request(
        {"action": "history", "channel": "general", "limit": 4, "before": page["messages"][0]["id"]}
    )
    assert [m["text"] for m in page["messages"]] == ["h2", "h3", "h4", "h5"] and page["hasMore"] is True
    assert [m["text"] for m in older["messages"]] == ["h0", "h1"] and older["hasMore"] is False

    late = await peers.open(target.url("bob", workspace))
    recovered = await late.request({"action": "join", "channel": "general", "since": ids[3]})
    assert recovered["recovered"] is True
    # everything after `since` (h4, h5), after a repeat of those just before it, sent seconds apart (a
    # lower id can be delivered after a higher one: clients drop what they have), never `since` itself
    assert [m["text"] for m in recovered["messages"]] == ["h0", "h1", "h2", "h4", "h5"]


async def test_unknown_action_and_bad_frames_get_error_frames(
    peers: Peers, target: Target, workspace: str
) -> None:
    alice = await peers.open(target.url("alice", workspace))
    unknown = await alice.request({"action": "shout"})
    not_json = await alice.request_raw("this is not json")
    not_joined = await alice.request({"action": "message", "channel": "general", "text": "x"})
    assert (unknown["code"], not_json["code"], not_joined["code"]) == (
        "unknown_action",
        "bad_request",
        "not_joined",
    )


async def test_vanished_client_is_cleaned_up_on_gone(peers: Peers, emulator: Any, workspace: str) -> None:
    # Given a subscriber whose connection vanished without $disconnect (AWS allows that): its items remain
    alice = await peers.joined("alice", workspace)
    state = _state_table(emulator)
    ghost = "GhostConn0000="
    state.put_item(
        Item={
            "PK": f"CHAN#{workspace}#general",
            "SK": f"SUB#{ghost}",
            "kind": "subscription",
            "connectionId": ghost,
            "userId": "ghost",
            "expiresAt": 4_102_444_800,
        }
    )
    # When a message is fanned out to the channel
    await alice.request({"action": "message", "channel": "general", "text": "anyone?"})
    await alice.wait_for(lambda e: e["type"] == "message")
    # Then the post to the ghost answered 410 (GoneException) and its subscription was removed
    key = {"PK": f"CHAN#{workspace}#general", "SK": f"SUB#{ghost}"}
    for _ in range(50):
        if "Item" not in state.get_item(Key=key):
            break
        await asyncio.sleep(0.1)
    assert "Item" not in state.get_item(Key=key)
    # and the sender's own subscription is untouched (aws-samples' chat app deleted the sender instead)
    await alice.request({"action": "message", "channel": "general", "text": "still here"})
    await alice.wait_for(lambda e: e["type"] == "message" and e["text"] == "still here")


async def test_oversized_frame_closes_with_1009(
    peers: Peers, target: Target, emulator: Any, workspace: str
) -> None:
    alice = await peers.open(target.url("alice", workspace))
    await alice.send({"action": "message", "channel": "general", "text": "x" * 40_000})
    assert await alice.closed() == 1009


async def test_idle_connection_is_closed_after_the_idle_timeout(
    peers: Peers, short_idle_emulator: Target, workspace: str
) -> None:
    from tests.e2e.conftest import IDLE_TIMEOUT_S

    alice = await peers.open(short_idle_emulator.url("alice", workspace))
    assert await alice.closed(IDLE_TIMEOUT_S + 5) == 1001  # "Going away", as API Gateway closes idle ones


# ---- helpers that look inside the emulator (local target only) ------------------------------------


def _state_table(emulator: Any) -> Any:
    import boto3

    assert emulator.template is not None and emulator.aws is not None
    name = emulator.template.tables["StateTable"].name
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=emulator.aws.dynamodb_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return resource.Table(name)
