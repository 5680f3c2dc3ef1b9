"""Parley end to end: real WebSocket clients against template.yaml served by the emulator (or a stack)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import Target
from tests.e2e.peer import Peer


async def joined(target: Target, user: str, workspace: str, channel: str = "general") -> Peer:
    peer = await Peer.open(target.url(user, workspace, name=user.title()))
    reply = await peer.request({"action": "join", "channel": channel})
    assert reply["type"] == "joined", reply
    return peer


async def test_message_reaches_every_subscribed_connection_in_order(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
    bob = await joined(target, "bob", workspace)
    bob_tab2 = await joined(target, "bob", workspace)
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
    for peer in (alice, bob, bob_tab2):
        await peer.close()


async def test_workspaces_are_isolated(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
    eve = await joined(target, "eve", workspace + "-other")
    await alice.request({"action": "message", "channel": "general", "text": "acme only"})
    await eve.request({"action": "message", "channel": "general", "text": "other only"})
    await alice.wait_for(lambda e: e["type"] == "message")
    await eve.wait_for(lambda e: e["type"] == "message")
    await asyncio.sleep(0.5)
    assert [e["text"] for e in alice.of("message")] == ["acme only"]
    assert [e["text"] for e in eve.of("message")] == ["other only"]
    await alice.close()
    await eve.close()


@pytest.mark.parametrize("token", [None, "", "not-a-jwt"])
async def test_handshake_refuses_missing_or_bad_tokens_with_401(target: Target, token: str | None) -> None:
    url = target.ws_url if token is None else f"{target.ws_url}?token={token}"
    with pytest.raises(InvalidStatus) as refused:
        await Peer.open(url)
    assert refused.value.response.status_code == 401


async def test_handshake_refuses_an_expired_token(target: Target, workspace: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await Peer.open(target.url("alice", workspace, expires_in_s=-120))
    assert refused.value.response.status_code == 401


async def test_typing_is_debounced_and_not_echoed(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
    bob = await joined(target, "bob", workspace)
    for _ in range(5):
        await alice.send({"action": "typing", "channel": "general"})
    await bob.wait_for(lambda e: e["type"] == "typing")
    await asyncio.sleep(1.0)
    assert len(bob.of("typing")) == 1
    assert alice.of("typing") == []
    await alice.close()
    await bob.close()


async def test_presence_join_then_leave_after_grace(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
    bob = await joined(target, "bob", workspace)
    diff = await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["joins"]
    )
    assert diff["leaves"] == []
    await bob.close()
    leave = await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["leaves"], timeout=15
    )
    assert leave["joins"] == []
    await alice.close()


async def test_presence_pages_through_the_present_users(target: Target, workspace: str) -> None:
    # GIVEN alice, then carol and bob joined general (alice has seen them arrive)
    peers = [await joined(target, user, workspace) for user in ("alice", "carol", "bob")]
    for user in ("carol", "bob"):
        await peers[0].wait_for(
            lambda e, user=user: e["type"] == "presence_diff" and user in [u["id"] for u in e["joins"]]
        )
    # WHEN alice reads presence a page of two at a time
    first = await peers[0].request({"action": "presence", "channel": "general", "limit": 2})
    rest = await peers[0].request({"action": "presence", "channel": "general", "after": first["next"]})
    # THEN the pages list the three in id order, and the last one has no next
    assert [u["id"] for u in first["users"] + rest["users"]] == ["alice", "bob", "carol"]
    assert first["next"] == "bob" and rest["next"] is None
    assert first["users"][0] == {"id": "alice", "name": "Alice"}
    for peer in peers:
        await peer.close()


async def test_quick_rejoin_broadcasts_no_leave(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
    bob = await joined(target, "bob", workspace)
    await alice.wait_for(
        lambda e: e["type"] == "presence_diff" and {"id": "bob", "name": "Bob"} in e["joins"]
    )
    await bob.request({"action": "leave", "channel": "general"})
    await bob.request({"action": "join", "channel": "general"})  # inside the (1 s) grace
    await asyncio.sleep(4)
    assert all(not e["leaves"] for e in alice.of("presence_diff"))
    await alice.close()
    await bob.close()


async def test_history_pages_back_and_since_recovers(target: Target, workspace: str) -> None:
    alice = await joined(target, "alice", workspace)
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

    late = await Peer.open(target.url("bob", workspace))
    recovered = await late.request({"action": "join", "channel": "general", "since": ids[3]})
    assert recovered["recovered"] is True
    assert [m["text"] for m in recovered["messages"]] == ["h4", "h5"]
    await alice.close()
    await late.close()


async def test_unknown_action_and_bad_frames_get_error_frames(target: Target, workspace: str) -> None:
    alice = await Peer.open(target.url("alice", workspace))
    unknown = await alice.request({"action": "shout"})
    not_json = await alice.request("this is not json")
    not_joined = await alice.request({"action": "message", "channel": "general", "text": "x"})
    assert (unknown["code"], not_json["code"], not_joined["code"]) == (
        "unknown_action",
        "bad_request",
        "not_joined",
    )
    await alice.close()


async def test_vanished_client_is_cleaned_up_on_gone(target: Target, emulator: Any, workspace: str) -> None:
    # Given a subscriber whose connection vanished without $disconnect (AWS allows that): its items remain
    alice = await joined(target, "alice", workspace)
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
    await alice.close()


async def test_oversized_frame_closes_with_1009(target: Target, emulator: Any, workspace: str) -> None:
    alice = await Peer.open(target.url("alice", workspace))
    await alice.send({"action": "message", "channel": "general", "text": "x" * 40_000})
    assert await alice.closed() == 1009


async def test_idle_connection_is_closed_after_the_idle_timeout(
    short_idle_emulator: Target, workspace: str
) -> None:
    from tests.e2e.conftest import IDLE_TIMEOUT_S

    alice = await Peer.open(short_idle_emulator.url("alice", workspace))
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
