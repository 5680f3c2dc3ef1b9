"""Edits, deletes and threads through the real handlers under moto: the acks, what history, recovery and
`thread` show, and fan-out that converges for every connection even when the stream repeats records
or hands them over out of order (DynamoDB streams are at least once and may interleave)."""

from __future__ import annotations

from typing import Any

from tests.integration.harness import joined_pair
from tests.support.handlers import LambdaContext, load
from tests.support.matrix import snapshot

CHANGE_EVENTS = ("message", "message_updated", "message_deleted", "thread_updated")


def _post(client: Any, text: str, **extra: Any) -> dict[str, Any]:
    client.harness.clock.advance(300)  # within every rate limit
    ack = client.send({"action": "message", "channel": "general", "text": text, **extra})
    assert ack is not None and ack["type"] == "ack", ack
    return ack


def _edit(client: Any, message_id: str, text: str, **extra: Any) -> dict[str, Any]:
    client.harness.clock.advance(300)
    reply = client.send(
        {"action": "edit", "channel": "general", "messageId": message_id, "text": text, **extra}
    )
    assert reply is not None
    return reply


def _delete(client: Any, message_id: str) -> dict[str, Any]:
    client.harness.clock.advance(300)
    reply = client.send({"action": "delete", "channel": "general", "messageId": message_id})
    assert reply is not None
    return reply


def _history(client: Any) -> dict[str, dict[str, Any]]:
    reply = client.send({"action": "history", "channel": "general"})
    assert reply is not None and reply["type"] == "history"
    return {m["id"]: m for m in reply["messages"]}


def converge(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a client holds after `events`, by the protocol's rule: per message the highest `version`
    wins (a `message` is version 0), and a thread summary the highest `threadVersion`."""
    held: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind not in CHANGE_EVENTS:
            continue
        current = held.get(event["id"])
        if kind == "thread_updated":
            base = current or {"id": event["id"]}
            if event["threadVersion"] > base.get("threadVersion", 0):
                base = base | {k: event[k] for k in ("replyCount", "lastReplyAt", "threadVersion")}
            held[event["id"]] = base
            continue
        version = event.get("version", 0)
        if current is not None and version <= current.get("version", 0) and "text" in current:
            continue
        state = {k: v for k, v in event.items() if k != "type"}
        if kind == "message_deleted":
            state |= {"deleted": True, "text": ""}
        if current is not None:  # a thread summary travels on its own events
            state |= {k: current[k] for k in ("replyCount", "lastReplyAt", "threadVersion") if k in current}
        held[event["id"]] = state
    return held


def _fan_out(records: list[dict[str, Any]]) -> None:
    response = load("fanout").handler({"Records": records}, LambdaContext(function_name="parley-fanout"))
    assert response == {"batchItemFailures": []}


# ---- edit -----------------------------------------------------------------------------------------


def test_an_edit_is_acked_shown_in_history_and_fanned_out_to_every_connection(parley: Any) -> None:
    # Given bob posted a message that alice received
    alice, bob = joined_pair(parley)
    posted = _post(bob, "helo")
    parley.pump()
    # When bob edits it
    edited = _edit(bob, posted["id"], "hello")
    parley.pump()
    # Then the ack carries version 1, history shows the new text with editedAt, and both connections
    # got a message_updated with the same version
    assert edited["type"] == "edited" and edited["messageId"] == posted["id"] and edited["version"] == 1
    shown = _history(alice)[posted["id"]]
    assert shown["text"] == "hello" and shown["version"] == 1 and shown["editedAt"] == edited["editedAt"]
    for client in (alice, bob):
        (update,) = client.events_of("message_updated")
        assert update["id"] == posted["id"] and update["text"] == "hello" and update["version"] == 1
        assert converge(client.events)[posted["id"]]["text"] == "hello"


def test_a_repeated_edit_writes_nothing_and_answers_as_the_first(parley: Any) -> None:
    # Given bob edited his message
    _, bob = joined_pair(parley)
    posted = _post(bob, "one")
    first = _edit(bob, posted["id"], "two")
    parley.pump()
    parley.notifier.clear()
    # When the same edit arrives again (a client's retry), even naming the version it started from
    before = snapshot(parley.aws.dynamodb)
    again = _edit(bob, posted["id"], "two", version=0)
    # Then it is acked with the same version, no table changed, and no event follows
    assert again == first
    assert snapshot(parley.aws.dynamodb) == before
    parley.pump()
    assert bob.events_of("message_updated") == []


def test_an_edit_from_a_stale_version_cannot_overwrite_a_newer_one(parley: Any) -> None:
    # Given bob's message was edited to version 1 from another of his connections
    _, bob = joined_pair(parley)
    posted = _post(bob, "draft")
    assert _edit(bob, posted["id"], "final")["version"] == 1
    # When an edit made from version 0 arrives late
    before = snapshot(parley.aws.dynamodb)
    late = _edit(bob, posted["id"], "stale text", version=0)
    # Then it is refused as a conflict and the newer text stays
    assert late["type"] == "error" and late["code"] == "conflict"
    assert snapshot(parley.aws.dynamodb) == before
    assert _history(bob)[posted["id"]]["text"] == "final"


# ---- delete ---------------------------------------------------------------------------------------


def test_a_delete_leaves_a_tombstone_without_text_everywhere(parley: Any) -> None:
    # Given bob posted and edited a message
    alice, bob = joined_pair(parley)
    posted = _post(bob, "oops, a secret")
    _edit(bob, posted["id"], "still secret")
    parley.pump()
    # When he deletes it
    gone = _delete(bob, posted["id"])
    parley.pump()
    # Then the ack and the history show a tombstone at version 2, the stored item keeps no text, and
    # every connection got message_deleted
    assert gone["type"] == "deleted" and gone["version"] == 2 and gone["deletedAt"]
    shown = _history(alice)[posted["id"]]
    assert shown["deleted"] is True and shown["text"] == "" and shown["version"] == 2
    item = parley.aws.dynamodb.Table("MessagesTable").get_item(
        Key={"PK": "WS#acme#CHAN#general", "SK": f"MSG#{posted['id']}"}
    )["Item"]
    assert "text" not in item and item["deletedAt"] == gone["deletedAt"]
    for client in (alice, bob):
        (deleted,) = client.events_of("message_deleted")
        assert deleted == {
            "type": "message_deleted",
            "id": posted["id"],
            "channel": "general",
            "version": 2,
            "deletedAt": gone["deletedAt"],
        }
        assert converge(client.events)[posted["id"]]["deleted"] is True


def test_a_repeated_delete_is_harmless(parley: Any) -> None:
    # Given bob deleted his message
    _, bob = joined_pair(parley)
    posted = _post(bob, "bye")
    first = _delete(bob, posted["id"])
    parley.pump()
    parley.notifier.clear()
    # When the delete is sent again
    before = snapshot(parley.aws.dynamodb)
    again = _delete(bob, posted["id"])
    # Then it answers the same tombstone, writes nothing and sends nothing
    assert again == first
    assert snapshot(parley.aws.dynamodb) == before
    parley.pump()
    assert bob.events_of("message_deleted") == []


def test_a_deleted_message_cannot_be_edited(parley: Any) -> None:
    _, bob = joined_pair(parley)
    posted = _post(bob, "bye")
    _delete(bob, posted["id"])
    reply = _edit(bob, posted["id"], "back again")
    assert reply["type"] == "error" and reply["code"] == "not_found"


def test_a_workspace_admin_may_delete_anyones_message(parley: Any) -> None:
    # Given bob posted, and root's token carries the admin claim (the authorizer passes it on)
    _, bob = joined_pair(parley)
    posted = _post(bob, "spam spam spam")
    root = parley.connect("root")
    root.auth["admin"] = True
    root.send({"action": "join", "channel": "general"})
    # When root deletes bob's message
    gone = _delete(root, posted["id"])
    # Then it is a tombstone
    assert gone["type"] == "deleted" and gone["version"] == 1
    assert _history(bob)[posted["id"]]["deleted"] is True


def test_an_admin_may_not_edit_someone_elses_message(parley: Any) -> None:
    _, bob = joined_pair(parley)
    posted = _post(bob, "mine")
    root = parley.connect("root")
    root.auth["admin"] = True
    root.send({"action": "join", "channel": "general"})
    reply = _edit(root, posted["id"], "now it is mine")
    assert reply["type"] == "error" and reply["code"] == "forbidden"


# ---- threads --------------------------------------------------------------------------------------


def test_replies_count_on_the_parent_and_page_through_thread(parley: Any) -> None:
    # Given alice started a thread and bob replied three times
    alice, bob = joined_pair(parley)
    parent = _post(alice, "lunch?")
    replies = [_post(bob, f"reply {i}", threadId=parent["id"]) for i in range(3)]
    parley.pump()
    # When alice pages the thread two replies at a time
    first = alice.send({"action": "thread", "channel": "general", "threadId": parent["id"], "limit": 2})
    assert first is not None and first["type"] == "thread"
    second = alice.send(
        {"action": "thread", "channel": "general", "threadId": parent["id"], "after": first["next"]}
    )
    assert second is not None
    # Then the pages hold the replies oldest first, the parent carries the count and the last reply's
    # time, and the channel got thread_updated up to threadVersion 3
    assert [m["id"] for m in first["messages"]] == [r["id"] for r in replies[:2]]
    assert first["next"] == replies[1]["id"]
    assert [m["id"] for m in second["messages"]] == [replies[2]["id"]] and second["next"] is None
    assert first["parent"]["replyCount"] == 3 and first["parent"]["lastReplyAt"] == replies[2]["ts"]
    assert _history(alice)[parent["id"]]["replyCount"] == 3
    held = converge(alice.events)
    assert held[parent["id"]]["replyCount"] == 3 and held[parent["id"]]["threadVersion"] == 3
    # replies also appear in the channel (docs/protocol.md, "Threads"), marked with their threadId
    assert all(_history(alice)[r["id"]]["threadId"] == parent["id"] for r in replies)


def test_a_deleted_reply_drops_the_count_and_stays_in_the_thread_as_a_tombstone(parley: Any) -> None:
    # Given a thread of two replies
    alice, bob = joined_pair(parley)
    parent = _post(alice, "question")
    kept = _post(bob, "answer", threadId=parent["id"])
    dropped = _post(bob, "wrong answer", threadId=parent["id"])
    # When bob deletes the second reply, and edits the first
    _delete(bob, dropped["id"])
    _edit(bob, kept["id"], "the answer")
    parley.pump()
    # Then the parent counts one reply (the edit changed no count), the thread shows the edit and the
    # tombstone, and every connection holds the same summary
    page = alice.send({"action": "thread", "channel": "general", "threadId": parent["id"]})
    assert page is not None
    assert page["parent"]["replyCount"] == 1 and page["parent"]["threadVersion"] == 3
    assert [(m["text"], m.get("deleted", False)) for m in page["messages"]] == [
        ("the answer", False),
        ("", True),
    ]
    for client in (alice, bob):
        held = converge(client.events)
        assert held[parent["id"]]["replyCount"] == 1
        assert held[dropped["id"]]["deleted"] is True and held[kept["id"]]["text"] == "the answer"


def test_a_reply_to_a_reply_or_to_a_deleted_message_is_not_found(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    parent = _post(alice, "root")
    reply = _post(bob, "child", threadId=parent["id"])
    gone = _post(alice, "soon gone")
    _delete(alice, gone["id"])
    before = snapshot(parley.aws.dynamodb)
    for thread_id in (reply["id"], gone["id"]):
        parley.clock.advance(300)
        refused = bob.send({"action": "message", "channel": "general", "text": "x", "threadId": thread_id})
        assert refused is not None and refused["code"] == "not_found"
    assert snapshot(parley.aws.dynamodb) == before


def test_editing_the_parent_keeps_its_thread_summary(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    parent = _post(alice, "plan")
    _post(bob, "ok", threadId=parent["id"])
    assert _edit(alice, parent["id"], "the plan", version=0)["version"] == 1  # a reply moved no version
    shown = _history(alice)[parent["id"]]
    assert shown["text"] == "the plan" and shown["replyCount"] == 1


# ---- at-least-once, out-of-order fan-out, and recovery ------------------------------------------------


def test_every_connection_converges_on_duplicated_and_reordered_change_records(parley: Any) -> None:
    # Given bob posts, edits twice and deletes a message, and a reply is posted and deleted
    alice, bob = joined_pair(parley)
    posted = _post(bob, "v0")
    _edit(bob, posted["id"], "v1")
    _edit(bob, posted["id"], "v2")
    reply = _post(alice, "re", threadId=posted["id"])
    _delete(alice, reply["id"])
    _delete(bob, posted["id"])
    records = parley.pump_source.poll()
    # When the fan-out is handed the records newest first, every one of them twice, across batches
    reordered = list(reversed(records))
    _fan_out(reordered[: len(reordered) // 2])
    _fan_out(reordered)
    _fan_out(records[:3])
    # Then every connection holds the tombstone and the thread's final summary
    for client in (alice, bob):
        held = converge(client.events)
        assert held[posted["id"]]["deleted"] is True and held[posted["id"]]["version"] == 3
        assert held[posted["id"]]["replyCount"] == 0 and held[posted["id"]]["threadVersion"] == 2
        assert held[reply["id"]]["deleted"] is True
    # and what history shows is the same state
    shown = _history(alice)
    assert shown[posted["id"]]["deleted"] is True and shown[posted["id"]]["replyCount"] == 0


def test_recovery_after_a_reconnect_shows_the_current_text_and_tombstones(parley: Any) -> None:
    # Given alice saw bob's first message, then dropped; bob then posted two more, edited one and
    # deleted the other
    alice, bob = joined_pair(parley)
    seen = _post(bob, "seen")
    parley.pump()
    alice.disconnect()
    edited = _post(bob, "tpyo")
    deleted = _post(bob, "regret")
    _edit(bob, edited["id"], "typo")
    _delete(bob, deleted["id"])
    parley.pump()
    # When alice re-joins with since = the last id she saw
    again = parley.connect("alice")
    joined = again.send({"action": "join", "channel": "general", "since": seen["id"]})
    # Then the recovery holds the messages as they are now
    assert joined is not None and joined["recovered"] is True
    recovered = {m["id"]: m for m in joined["messages"]}
    assert recovered[edited["id"]]["text"] == "typo" and recovered[edited["id"]]["editedAt"]
    assert recovered[deleted["id"]]["deleted"] is True and recovered[deleted["id"]]["text"] == ""


def test_a_tombstone_keeps_nothing_derived_from_the_text(parley: Any) -> None:
    # Given a message whose item also holds a list parsed from its text (another feature's `mentions`)
    _, bob = joined_pair(parley)
    posted = _post(bob, "@alice see this")
    key = {"PK": "WS#acme#CHAN#general", "SK": f"MSG#{posted['id']}"}
    table = parley.aws.dynamodb.Table("MessagesTable")
    table.update_item(
        Key=key, UpdateExpression="SET mentions = :m", ExpressionAttributeValues={":m": ["alice"]}
    )
    # When bob deletes it
    _delete(bob, posted["id"])
    # Then neither the text nor the mentions are kept
    item = table.get_item(Key=key)["Item"]
    assert "text" not in item and "mentions" not in item
