"""The main chat flow through the real handlers under moto: join, message, fan-out, history, presence."""

from __future__ import annotations

from typing import Any


def test_join_answers_recent_messages_and_presence(parley: Any) -> None:
    # Given alice is connected to workspace acme
    alice = parley.connect("alice", name="Alice")
    # When she joins general
    reply = alice.send({"action": "join", "channel": "general"})
    # Then she gets the joined frame with herself present and no messages yet
    assert reply == {
        "type": "joined",
        "channel": "general",
        "messages": [],
        "recovered": True,
        "presence": [{"id": "alice", "name": "Alice"}],
        "presenceMore": False,
    }


def test_message_is_acked_and_fanned_out_to_every_subscriber_including_sender(parley: Any) -> None:
    alice, bob = parley.connect("alice"), parley.connect("bob")
    alice.send({"action": "join", "channel": "general"})
    bob.send({"action": "join", "channel": "general"})
    parley.pump()
    parley.notifier.clear()

    ack = alice.send({"action": "message", "channel": "general", "text": "hi bob", "clientMsgId": "m-1"})
    parley.pump()

    assert ack is not None and ack["type"] == "ack" and ack["clientMsgId"] == "m-1"
    for client in (alice, bob):
        messages = client.events_of("message")
        assert [m["text"] for m in messages] == ["hi bob"]
        assert messages[0]["id"] == ack["id"]
        assert messages[0]["user"] == {"id": "alice", "name": "alice"}


def test_history_pages_backwards_oldest_first(parley: Any) -> None:
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    ids = []
    for i in range(5):
        parley.clock.advance(1000)  # stay under the rate limit
        ack = alice.send({"action": "message", "channel": "general", "text": f"m{i}"})
        ids.append(ack["id"])

    newest = alice.send({"action": "history", "channel": "general", "limit": 2})
    older = alice.send(
        {"action": "history", "channel": "general", "limit": 2, "before": newest["messages"][0]["id"]}
    )

    assert [m["text"] for m in newest["messages"]] == ["m3", "m4"] and newest["hasMore"] is True
    assert [m["text"] for m in older["messages"]] == ["m1", "m2"] and older["hasMore"] is True
    assert ids == sorted(ids)
