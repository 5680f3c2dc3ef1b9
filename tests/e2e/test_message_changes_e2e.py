"""Edits, deletes and threads end to end: real WebSocket clients against template.yaml served by the
emulator (its IAM checks included), or a deployed stack."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Peers, Target


def _is(kind: str, message_id: str, **fields: Any) -> Any:
    return lambda e: (
        e["type"] == kind and e["id"] == message_id and all(e.get(k) == v for k, v in fields.items())
    )


async def test_edit_delete_and_a_thread_reach_every_connection(
    peers: Peers, target: Target, workspace: str
) -> None:
    # Given alice and two connections of bob in general, and root, a workspace admin by token claim
    alice = await peers.joined("alice", workspace)
    bob = await peers.joined("bob", workspace)
    bob_tab2 = await peers.joined("bob", workspace)
    root = await peers.open(target.url("root", workspace, name="Root", **{"parley:admin": True}))
    assert (await root.request({"action": "join", "channel": "general"}))["type"] == "joined"
    posted = await alice.request(
        {"action": "message", "channel": "general", "text": "lunhc?", "clientMsgId": "l-1"}
    )
    # When alice fixes her typo, bob replies twice in the thread, and root deletes one of the replies
    edited = await alice.request(
        {"action": "edit", "channel": "general", "messageId": posted["id"], "text": "lunch?", "version": 0}
    )
    replies = [
        await bob.request(
            {"action": "message", "channel": "general", "text": t, "threadId": posted["id"], "clientMsgId": t}
        )
        for t in ("yes", "spam")
    ]
    gone = await root.request({"action": "delete", "channel": "general", "messageId": replies[1]["id"]})
    # Then every connection sees the edit, the replies, the tombstone and the thread's final summary
    assert edited["type"] == "edited" and edited["version"] == 1
    assert gone["type"] == "deleted"
    for peer in (alice, bob, bob_tab2, root):
        await peer.wait_for(_is("message_updated", posted["id"], text="lunch?", version=1))
        await peer.wait_for(_is("message_deleted", replies[1]["id"], version=1))
        await peer.wait_for(_is("thread_updated", posted["id"], threadVersion=3, replyCount=1))
    # and the thread reads back as it is now, a tombstone in place of the deleted reply
    page = await bob.request({"action": "thread", "channel": "general", "threadId": posted["id"]})
    assert page["type"] == "thread"
    assert page["parent"]["text"] == "lunch?" and page["parent"]["replyCount"] == 1
    assert [(m["text"], m.get("deleted", False)) for m in page["messages"]] == [("yes", False), ("", True)]
    # while a user who is not the author, nor an admin, may do neither
    refused = await bob.request({"action": "delete", "channel": "general", "messageId": posted["id"]})
    assert refused["type"] == "error" and refused["code"] == "forbidden"
