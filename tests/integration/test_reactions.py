"""Reactions through the real handlers under moto: counted once, shown per reader, fanned out so that every
connection converges even when the stream repeats or reorders records."""

from __future__ import annotations

import random
from typing import Any

import pytest

from parley import protocol
from tests.integration.harness import joined_pair
from tests.support.handlers import LambdaContext, load
from tests.support.matrix import assert_error_frame, send, snapshot

Reactions = dict[tuple[str, str], int]  # (message id, name) -> count


def _post(client: Any, text: str = "react to me") -> str:
    reply = client.send({"action": "message", "channel": "general", "text": text})
    assert reply is not None and reply["type"] == "ack", reply
    return str(reply["id"])


def _react(client: Any, message_id: str, name: str, *, remove: bool = False) -> dict[str, Any]:
    frame: dict[str, Any] = {"action": "react", "channel": "general", "messageId": message_id, "name": name}
    if remove:
        frame["remove"] = True
    reply = client.send(frame)
    assert reply is not None and reply["type"] == "reacted", reply
    return reply


def _history_reactions(client: Any) -> dict[str, dict[str, Any]]:
    """message id -> {reactions, reactionsVersion} as the client's history shows them."""
    reply = client.send({"action": "history", "channel": "general"})
    assert reply is not None and reply["type"] == "history"
    return {
        m["id"]: {"reactions": m["reactions"], "version": m["reactionsVersion"]}
        for m in reply["messages"]
        if "reactions" in m
    }


def _fan_out(records: list[dict[str, Any]]) -> None:
    response = load("fanout").handler({"Records": records}, LambdaContext(function_name="parley-fanout"))
    assert response == {"batchItemFailures": []}


def _converge(events: list[dict[str, Any]]) -> Reactions:
    """The client's rule (docs/protocol.md): per (message, name) keep the event with the highest version."""
    newest: dict[tuple[str, str], tuple[int, int]] = {}
    for event in events:
        key = (event["messageId"], event["name"])
        if key not in newest or event["version"] > newest[key][0]:
            newest[key] = (event["version"], event["count"])
    return {key: count for key, (_, count) in newest.items() if count > 0}


def test_a_reaction_is_counted_and_fanned_out_to_every_connection(parley: Any) -> None:
    # Given alice posted in general, where bob is joined too
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    parley.pump()
    # When bob reacts with a thumbs up
    reply = _react(bob, message_id, "👍")
    parley.pump()
    # Then he is told it changed, and both connections get the event with the count and version
    assert reply == {
        "type": "reacted",
        "channel": "general",
        "messageId": message_id,
        "name": "👍",
        "added": True,
        "changed": True,
    }
    for client in (alice, bob):
        (event,) = client.events_of("reaction")
        assert event == {
            "type": "reaction",
            "id": f"r{message_id}.1",
            "channel": "general",
            "messageId": message_id,
            "name": "👍",
            "count": 1,
            "version": 1,
            "user": {"id": "bob", "name": "Bob"},
            "added": True,
        }


def test_reacting_twice_changes_nothing_and_writes_nothing(parley: Any) -> None:
    # Given bob reacted to alice's message
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    _react(bob, message_id, "+1")
    parley.pump()
    parley.notifier.clear()
    before = snapshot(parley.aws.dynamodb)
    # When he sends the same reaction again (a retry, a second click on another device)
    reply = _react(bob, message_id, "+1")
    parley.pump()
    # Then it is answered unchanged, no table changed, no event went out and the count is still 1
    assert reply["changed"] is False
    assert snapshot(parley.aws.dynamodb) == before
    assert alice.events_of("reaction") == []
    assert _history_reactions(alice)[message_id]["reactions"] == [{"name": "+1", "count": 1, "me": False}]


def test_removing_a_reaction_one_never_made_writes_nothing(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    _react(alice, message_id, "tada")
    before = snapshot(parley.aws.dynamodb)
    reply = _react(bob, message_id, "tada", remove=True)
    assert reply["changed"] is False and reply["added"] is False
    assert snapshot(parley.aws.dynamodb) == before


def test_history_shows_counts_per_name_and_what_the_reader_reacted(parley: Any) -> None:
    # Given alice and bob both put a thumbs up on alice's message, and bob a party popper too
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    plain = _post(alice, "nobody reacts to this")
    _react(alice, message_id, "👍")
    _react(bob, message_id, "👍")
    _react(bob, message_id, "🎉")
    # When each reads the history
    mine, his = _history_reactions(alice), _history_reactions(bob)
    # Then each sees both counts, `me` where they reacted, the version of 3 changes, and the other
    # message has no reactions at all
    assert mine[message_id] == {
        "reactions": [{"name": "🎉", "count": 1, "me": False}, {"name": "👍", "count": 2, "me": True}],
        "version": 3,
    }
    assert his[message_id]["reactions"] == [
        {"name": "🎉", "count": 1, "me": True},
        {"name": "👍", "count": 2, "me": True},
    ]
    assert plain not in mine


def test_a_removed_last_reaction_leaves_an_empty_list_with_its_version(parley: Any) -> None:
    # Given bob reacted and took it back
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    _react(bob, message_id, "eyes")
    parley.pump()
    _react(bob, message_id, "eyes", remove=True)
    parley.pump()
    # Then the event says 0 at version 2, and history shows no names at version 2 (so a client holding
    # the old count drops it), and bob's own item is gone with his last name
    assert [(e["count"], e["version"], e["added"]) for e in alice.events_of("reaction")] == [
        (1, 1, True),
        (0, 2, False),
    ]
    assert _history_reactions(alice)[message_id] == {"reactions": [], "version": 2}
    items = snapshot(parley.aws.dynamodb)["MessagesTable"]
    assert not [i for i in items if str(i["SK"]).startswith("MRU#")]


def test_join_and_recovery_show_reactions(parley: Any) -> None:
    # Given a message with a reaction
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    later = _post(alice, "later")
    _react(bob, message_id, "heart")
    # When carol joins, and bob re-joins with since just before the message
    joined = parley.connect("carol").send({"action": "join", "channel": "general"})
    again = parley.connect("bob").send(
        {"action": "join", "channel": "general", "since": f"{int(message_id) - 1:017d}"}
    )
    # Then both see the count; only bob sees it as his
    for reply, me in ((joined, False), (again, True)):
        assert reply is not None
        shown = {m["id"]: m.get("reactions") for m in reply["messages"]}
        assert shown[message_id] == [{"name": "heart", "count": 1, "me": me}]
        assert shown[later] is None


def test_counts_converge_for_every_connection_when_records_are_repeated_and_reordered(parley: Any) -> None:
    # Given three users react and un-react on two messages, and every stream record is held back
    alice, bob = joined_pair(parley)
    carol = parley.connect("carol", name="Carol")
    carol.send({"action": "join", "channel": "general"})
    first, second = _post(alice, "one"), _post(bob, "two")
    parley.pump()
    parley.notifier.clear()
    steps = [
        (alice, first, "👍", False),
        (bob, first, "👍", False),
        (carol, first, "👍", False),
        (bob, first, "👍", True),
        (carol, first, "🎉", False),
        (alice, second, "+1", False),
        (alice, second, "+1", True),
        (bob, second, "+1", False),
        (carol, first, "🎉", True),
        (bob, first, "🎉", False),
    ]
    for client, message_id, name, remove in steps:
        parley.clock.advance(50)
        _react(client, message_id, name, remove=remove)
    records = parley.pump_source.poll()
    # When the fan-out gets them shuffled, every one at least once, in several batches
    shuffled = records + random.Random(7).sample(records, len(records) // 2)
    random.Random(11).shuffle(shuffled)
    for start in range(0, len(shuffled), 4):
        _fan_out(shuffled[start : start + 4])
    # Then every connection, keeping the newest version per (message, name), shows what history shows
    truth = {
        (message_id, r["name"]): r["count"]
        for message_id, shown in _history_reactions(alice).items()
        for r in shown["reactions"]
    }
    assert truth == {(first, "👍"): 2, (first, "🎉"): 1, (second, "+1"): 1}
    for client in (alice, bob, carol):
        assert _converge(client.events_of("reaction")) == truth


def test_a_message_takes_at_most_fifty_different_reactions(parley: Any) -> None:
    # Given 50 different names on one message, from three users (each may put 20 on a message)
    alice, bob = joined_pair(parley)
    carol = parley.connect("carol")
    carol.send({"action": "join", "channel": "general"})
    message_id = _post(alice)
    names = [f"n{i}" for i in range(protocol.MAX_REACTIONS_PER_MESSAGE)]
    for i, name in enumerate(names):
        parley.clock.advance(400)
        _react((alice, bob, carol)[i // 20], message_id, name)
    # When carol adds a 51st name
    before = snapshot(parley.aws.dynamodb)
    frame = {"action": "react", "channel": "general", "messageId": message_id, "name": "one-too-many"}
    request_id, reply = send(carol, frame)
    # Then she is refused, nothing is written, and adding to a name already there still works
    assert_error_frame(reply, code="quota_exceeded", request_id=request_id, action="react")
    assert snapshot(parley.aws.dynamodb) == before
    assert _react(carol, message_id, "n0")["changed"] is True
    assert len(_history_reactions(alice)[message_id]["reactions"]) == 50


def test_one_user_puts_at_most_twenty_reactions_on_one_message(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    for i in range(protocol.MAX_REACTIONS_PER_USER):
        parley.clock.advance(400)
        _react(bob, message_id, f"r{i}")
    before = snapshot(parley.aws.dynamodb)
    request_id, reply = send(
        bob, {"action": "react", "channel": "general", "messageId": message_id, "name": "r-last"}
    )
    assert_error_frame(reply, code="quota_exceeded", request_id=request_id, action="react")
    assert snapshot(parley.aws.dynamodb) == before
    # another user still may
    assert _react(alice, message_id, "r-last")["changed"] is True


def test_a_message_of_another_channel_is_not_found(parley: Any) -> None:
    # Given a message in random, and alice joined to general only
    alice, _ = joined_pair(parley)
    alice.send({"action": "join", "channel": "random"})
    elsewhere = alice.send({"action": "message", "channel": "random", "text": "over here"})["id"]
    before = snapshot(parley.aws.dynamodb)
    # When she reacts to it as if it were in general
    frame = {"action": "react", "channel": "general", "messageId": elsewhere, "name": "+1"}
    request_id, reply = send(alice, frame)
    # Then it is not found there, and nothing is written
    assert_error_frame(reply, code="not_found", request_id=request_id, action="react")
    assert snapshot(parley.aws.dynamodb) == before


def test_a_deleted_message_takes_no_reaction(parley: Any) -> None:
    # Given bob reacted to alice's message, and she then deleted it (a tombstone: `deletedAt`, no text)
    alice, bob = joined_pair(parley)
    message_id = _post(alice)
    _react(bob, message_id, "+1")
    deleted = alice.send({"action": "delete", "channel": "general", "messageId": message_id})
    assert deleted is not None and deleted["type"] == "deleted"
    before = snapshot(parley.aws.dynamodb)
    # When either of them reacts to it, or bob takes his reaction back
    for client, frame_extra in (
        (bob, {"name": "tada"}),
        (alice, {"name": "+1"}),
        (bob, {"name": "+1", "remove": True}),
    ):
        frame = {"action": "react", "channel": "general", "messageId": message_id, **frame_extra}
        request_id, reply = send(client, frame)
        # Then the tombstone is not found for reactions, and nothing is written
        assert_error_frame(reply, code="not_found", request_id=request_id, action="react")
    assert snapshot(parley.aws.dynamodb) == before


@pytest.mark.parametrize("name", ["👍", "👍🏽", "❤️", "🇫🇷", "1️⃣", "👨‍👩‍👧", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "©", "+1", "thumbs_up", "-1"])
def test_names_of_one_emoji_or_a_short_name_are_accepted(parley: Any, name: str) -> None:
    alice, _ = joined_pair(parley)
    message_id = _post(alice)
    assert _react(alice, message_id, name)["changed"] is True
    assert _history_reactions(alice)[message_id]["reactions"] == [{"name": name, "count": 1, "me": True}]


def test_a_private_channels_reactions_reach_its_members_only(parley: Any) -> None:
    # Given alice's private channel, bob invited and joined, and mallory joined to general only
    alice = parley.connect("alice")
    hush = alice.send({"action": "create_channel", "name": "hush", "private": True})["channel"]["id"]
    alice.send({"action": "join", "channel": hush})
    alice.send({"action": "invite", "channel": hush, "user": "bob"})
    bob = parley.connect("bob")
    bob.send({"action": "join", "channel": hush})
    mallory = parley.connect("mallory")
    mallory.send({"action": "join", "channel": "general"})
    message_id = alice.send({"action": "message", "channel": hush, "text": "secret"})["id"]
    parley.pump()
    # When bob reacts, and mallory tries to
    frame = {"action": "react", "channel": hush, "messageId": message_id, "name": "+1"}
    assert bob.send(frame)["type"] == "reacted"
    request_id, reply = send(mallory, frame)
    parley.pump()
    # Then mallory is refused and sees no event; alice and bob do
    assert_error_frame(reply, code="not_joined", request_id=request_id, action="react")
    assert mallory.events_of("reaction") == []
    assert [e["count"] for e in alice.events_of("reaction")] == [1]
    assert [e["count"] for e in bob.events_of("reaction")] == [1]
