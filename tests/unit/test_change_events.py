"""The fan-out's plan for MODIFYs of message items: an edit, a delete and a thread's summary become
events carrying their versions; any other change of a message item becomes none (pure, no AWS)."""

from __future__ import annotations

import json

from parley.fanout import plan
from tests.unit.fanout_records import WS, change, message_item

ID = "17900000000000001"


def _events(*changes: object) -> list[dict[str, object]]:
    result = plan(changes)  # type: ignore[arg-type]
    return [json.loads(e.encoded) for e in result.channels.get((WS, "general"), [])]


def test_an_edit_becomes_message_updated_with_its_version() -> None:
    old = message_item(ID)
    new = message_item(ID, text="fixed", version=1, editedAt="2026-09-21T14:15:00.000Z")
    (event,) = _events(change("1", "MODIFY", old=old, new=new))
    assert event["type"] == "message_updated"
    assert (event["id"], event["text"], event["version"]) == (ID, "fixed", 1)


def test_a_delete_becomes_message_deleted_without_text() -> None:
    old = message_item(ID, version=1)
    new = {k: v for k, v in message_item(ID, version=2, deletedAt="d").items() if k != "text"}
    (event,) = _events(change("1", "MODIFY", old=old, new=new))
    assert event == {
        "type": "message_deleted",
        "id": ID,
        "channel": "general",
        "version": 2,
        "deletedAt": "d",
    }


def test_a_reply_counted_on_its_parent_becomes_thread_updated() -> None:
    old = message_item(ID)
    new = message_item(ID, replyCount=1, lastReplyAt="t", threadVersion=1)
    (event,) = _events(change("1", "MODIFY", old=old, new=new))
    assert event == {
        "type": "thread_updated",
        "id": ID,
        "channel": "general",
        "replyCount": 1,
        "lastReplyAt": "t",
        "threadVersion": 1,
    }


def test_another_features_change_of_a_message_item_sends_nothing() -> None:
    # e.g. an attribute another feature keeps on the item: neither version moved
    old = message_item(ID, version=1)
    new = message_item(ID, version=1, mentions=["bob"])
    result = plan([change("1", "MODIFY", old=old, new=new)])
    assert result.channels == {} and result.ignored == ["1"]


def test_a_repeated_record_plans_the_same_event_again() -> None:
    # at least once: a retried record is the same event, which clients drop by its version
    old, new = message_item(ID), message_item(ID, text="x", version=1)
    first, again = _events(change("1", "MODIFY", old=old, new=new), change("1", "MODIFY", old=old, new=new))
    assert first == again
