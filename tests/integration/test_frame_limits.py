"""AWS's limits through the real handlers under moto: 128 KB per WebSocket message, 1 MB per Query page."""

from __future__ import annotations

from typing import Any

from parley import protocol
from parley.ids import message_id_for
from parley.models import Message, User

API_GATEWAY_LIMIT = 128 * 1024  # per message, route responses and @connections posts alike
BIG = "\U0001f600" * protocol.MAX_TEXT  # 16,000 bytes: the most a text may hold


def wire_bytes(frame: dict[str, Any] | str) -> int:
    raw = frame if isinstance(frame, str) else protocol.encode(frame)
    return len(raw.encode("utf-8"))


def ids(frame: dict[str, Any]) -> list[str]:
    return [m["id"] for m in frame["messages"]]


def test_joined_with_14_messages_of_4000_emoji_fits_in_one_message(parley: Any) -> None:
    # Given alice posted 15 messages of 4,000 emoji to general (each acked), and they were fanned out
    alice, bob = parley.connect("alice"), parley.connect("bob")
    alice.send({"action": "join", "channel": "general"})
    posted = []
    for i in range(15):
        ack = alice.send({"action": "message", "channel": "general", "text": BIG, "clientMsgId": f"c{i}"})
        assert ack is not None and ack["type"] == "ack", ack
        posted.append(ack["id"])
    bob.send({"action": "join", "channel": "general"})
    parley.pump()
    # Then every frame the fan-out posted is within the budget
    assert parley.notifier.frames and all(
        wire_bytes(raw) <= protocol.FRAME_BUDGET for raws in parley.notifier.frames.values() for raw in raws
    )
    # When bob joins again with since = the first message (14 missed, about 226 KB of them)
    reply = bob.send({"action": "join", "channel": "general", "since": posted[0]})
    # Then joined fits, holds the newest of them in order, and says they were not all recovered
    assert reply is not None and reply["type"] == "joined"
    assert wire_bytes(reply) <= protocol.FRAME_BUDGET < API_GATEWAY_LIMIT
    assert 0 < len(reply["messages"]) < 14 and ids(reply) == posted[-len(reply["messages"]) :]
    assert reply["recovered"] is False
    # When he fills the gap with history from the oldest he got, Then he reaches his `since` with no
    # message twice and none missing
    seen = ids(reply)
    while True:
        page = bob.send({"action": "history", "channel": "general", "before": seen[0], "limit": 100})
        assert page is not None and wire_bytes(page) <= protocol.FRAME_BUDGET
        seen = ids(page) + seen
        if not page["hasMore"]:
            break
    assert seen == posted


def test_join_without_since_fits_and_stays_recovered(parley: Any) -> None:
    # Given 15 messages of 4,000 emoji in general
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    for i in range(15):
        alice.send({"action": "message", "channel": "general", "text": BIG, "clientMsgId": f"c{i}"})
    # When bob joins without since
    reply = parley.connect("bob").send({"action": "join", "channel": "general"})
    # Then joined fits with the newest messages and recovered stays true (nothing was missed)
    assert reply is not None and wire_bytes(reply) <= protocol.FRAME_BUDGET
    assert 0 < len(reply["messages"]) < 15 and reply["recovered"] is True


def test_history_over_more_than_1_mb_of_messages_pages_without_gaps_or_repeats(parley: Any) -> None:
    # Given 70 messages of 16 KB in general (1.1 MB: more than one Query page)
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    start = parley.clock.now_ms()
    stored = [
        parley.store.append_message(
            Message(message_id_for(start + i), "acme", "general", "", User("alice", "alice"), BIG)
        ).id
        for i in range(70)
    ]
    # When alice pages back through history, 100 at a time, from the newest
    seen: list[str] = []
    frame: dict[str, Any] = {"action": "history", "channel": "general", "limit": 100}
    pages = 0
    while True:
        page = alice.send(frame)
        assert page is not None and page["type"] == "history", page
        assert wire_bytes(page) <= protocol.FRAME_BUDGET
        pages += 1
        seen = ids(page) + seen
        if not page["hasMore"]:
            break
        frame = {**frame, "before": page["messages"][0]["id"]}
        assert pages < 100, "paging does not end"
    # Then every message comes once, in order, and the first pages said there was more
    assert seen == stored and pages > 1


def test_a_text_over_the_byte_limit_is_refused_and_not_stored(parley: Any) -> None:
    # Given alice in general
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    # When she sends 4,000 control characters (4,000 characters, but 24,000 bytes as \u0001 in JSON)
    reply = alice.send({"action": "message", "channel": "general", "text": "\x01" * protocol.MAX_TEXT})
    # Then it is a bad_request naming the text and its byte limit, and nothing was stored
    assert reply is not None and reply["code"] == "bad_request"
    assert reply["message"].startswith("text:") and f"{protocol.MAX_TEXT_BYTES} bytes" in reply["message"]
    assert parley.store.recent_messages("acme", "general", 10).messages == []
