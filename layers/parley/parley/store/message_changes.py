"""Edits, deletes and threads of channel messages: compare-and-set on a message's `version`, a reply
count kept on a thread's parent, and a thread's replies read from the sparse `Threads` index."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from boto3.dynamodb.conditions import Key

from parley.models import Message, MessagePage
from parley.store import items, keys
from parley.store.calls import CONDITION_FAILED, call, transact, written
from parley.store.tables import TableAccess, query_up_to


def _version_holds(seen: int) -> str:
    # messages written before edits existed have no `version`: that is version 0
    return "attribute_not_exists(version)" if seen == 0 else "version = :seen"


class MessageChangeStore(TableAccess):
    def current_message(self, workspace: str, channel: str, message_id: str) -> Message | None:
        """The message as it is now (a consistent read): what an edit or a delete decides on."""
        item = call(
            self._messages.get_item,
            Key=keys.message_key(workspace, channel, message_id),
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else items.message_from_item(item)

    def replace_text(self, seen: Message, text: str, edited_at: str) -> Message | None:
        """Write `text` over `seen` if the message is still at `seen.version` and not deleted; the
        message as written, or None when it changed in between (read it again and decide again)."""
        values: dict[str, Any] = {":text": text, ":at": edited_at, ":next": seen.version + 1}
        if seen.version:
            values[":seen"] = seen.version
        done = written(
            self._messages.update_item,
            Key=keys.message_key(seen.workspace, seen.channel, seen.id),
            UpdateExpression="SET #text = :text, editedAt = :at, version = :next",
            ConditionExpression=f"attribute_exists(PK) AND attribute_not_exists(deletedAt) AND "
            f"{_version_holds(seen.version)}",
            ExpressionAttributeNames={"#text": "text"},
            ExpressionAttributeValues=values,
        )
        if not done:
            return None
        return _replace(seen, text=text, edited_at=edited_at, version=seen.version + 1)

    def tombstone(self, seen: Message, deleted_at: str) -> Message | None:
        """Delete `seen`'s text (and what was derived from it) if it is still at `seen.version`; a
        reply's parent loses one from its count in the same transaction. The tombstone, or None when
        the message changed in between."""
        values: dict[str, Any] = {":at": deleted_at, ":next": seen.version + 1}
        if seen.version:
            values[":seen"] = seen.version
        update = {
            "TableName": self._tables.messages_name,
            "Key": keys.message_key(seen.workspace, seen.channel, seen.id),
            # `mentions` (another feature's list, parsed from the text) goes with the text
            "UpdateExpression": "SET deletedAt = :at, version = :next REMOVE #text, #mentions",
            "ConditionExpression": f"attribute_exists(PK) AND attribute_not_exists(deletedAt) AND "
            f"{_version_holds(seen.version)}",
            "ExpressionAttributeNames": {"#text": "text", "#mentions": "mentions"},
            "ExpressionAttributeValues": values,
        }
        tombstone = _replace(seen, text="", deleted_at=deleted_at, version=seen.version + 1)
        if seen.thread_id is None:
            done = written(self._client.update_item, **update)
            return tombstone if done else None
        parent = {
            "TableName": self._tables.messages_name,
            "Key": keys.message_key(seen.workspace, seen.channel, seen.thread_id),
            "UpdateExpression": "ADD replyCount :minus, threadVersion :one",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":minus": -1, ":one": 1},
        }
        cancelled = transact(self._client, [{"Update": update}, {"Update": parent}])
        if cancelled is None:
            return tombstone
        if cancelled.reasons and cancelled.reasons[0] == CONDITION_FAILED:
            return None
        # the parent is gone (parents are never removed, only tombstoned: a hand-deleted item): the
        # reply is deleted all the same
        done = written(self._client.update_item, **update)
        return tombstone if done else None

    def thread_replies(
        self, workspace: str, channel: str, parent_id: str, after: str | None, limit: int
    ) -> MessagePage:
        """The first `limit` replies of a thread after `after`, oldest first, and whether more follow.
        A Query of the `Threads` index, which is eventually consistent: a reply written a moment ago
        may be missing (its `message` event still reaches the channel)."""
        partition = Key(keys.THREAD_KEY).eq(keys.thread_key(workspace, channel, parent_id))
        key: Any = partition if after is None else partition & Key("SK").gt(keys.message_sk(after))
        found = query_up_to(
            self._messages,
            limit + 1,
            IndexName=keys.THREADS_INDEX,
            KeyConditionExpression=key,
            ScanIndexForward=True,
        )
        replies = [items.message_from_item(i) for i in found[:limit]]
        return MessagePage(replies, len(found) > limit)


def _replace(message: Message, **changes: Any) -> Message:
    return replace(message, **changes)
