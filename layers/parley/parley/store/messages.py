"""Channel messages: appended in id order behind a per-channel head item, read back a page at a time."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from parley.errors import NotFound, StoreError
from parley.ids import message_id_ms, next_message_id
from parley.models import Message, MessagePage
from parley.store import items, keys
from parley.store.calls import CONDITION_FAILED, call, transact
from parley.store.tables import TableAccess, query_up_to

_APPEND_ATTEMPTS = 8


class MessageStore(TableAccess):
    def append_message(self, draft: Message) -> Message:
        """Store a message with an id greater than every earlier one of its channel.

        The channel's head item and the message are written in one transaction whose condition is
        `lastId < id`, so ids increase with commit order. The stream may still interleave the records
        of different transactions (DynamoDB documents it): consumers must not take stream order for id
        order.
        """
        head = keys.head_key(draft.workspace, draft.channel)
        messages = self._tables.messages_name
        message = draft
        for _ in range(_APPEND_ATTEMPTS):
            transaction: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": messages,
                        "Key": head,
                        "UpdateExpression": "SET lastId = :id, kind = :k",
                        "ConditionExpression": "attribute_not_exists(lastId) OR lastId < :id",
                        "ExpressionAttributeValues": {":id": message.id, ":k": "head"},
                    }
                },
                {"Put": {"TableName": messages, "Item": items.message_item(message)}},
            ]
            if message.thread_id is not None:
                transaction.append(_reply_counted(messages, message))
            cancelled = transact(self._client, transaction)
            if cancelled is None:
                return message
            if cancelled.reasons[2:] == (CONDITION_FAILED,):
                raise NotFound(
                    f"thread '{message.thread_id}' is not a live message of channel '{message.channel}'"
                ) from cancelled.cause
            # the head's condition failed: another writer took this id or a later one
            stored = call(self._messages.get_item, Key=head, ConsistentRead=True).get("Item", {})
            last = str(stored.get("lastId", message.id))
            new_id = next_message_id(max(last, message.id), message_id_ms(message.id))
            message = draft.renumbered(new_id)
        raise StoreError("message id contention: too many concurrent writers")

    def get_message(self, workspace: str, channel: str, message_id: str) -> Message | None:
        item = call(self._messages.get_item, Key=keys.message_key(workspace, channel, message_id)).get("Item")
        return None if item is None else items.message_from_item(item)

    def recent_messages(self, workspace: str, channel: str, limit: int) -> MessagePage:
        key = Key("PK").eq(keys.channel_messages_pk(workspace, channel)) & Key("SK").begins_with(
            keys.MESSAGE_PREFIX
        )
        return self._page_backwards(key, limit)

    def messages_before(self, workspace: str, channel: str, before: str, limit: int) -> MessagePage:
        upper = keys.message_sk(f"{int(before) - 1:017d}")
        key = Key("PK").eq(keys.channel_messages_pk(workspace, channel)) & Key("SK").between(
            keys.MESSAGE_PREFIX, upper
        )
        return self._page_backwards(key, limit)

    def messages_after(self, workspace: str, channel: str, since: str, limit: int) -> MessagePage:
        """The newest `limit` messages after `since`; has_more means some in between were left out."""
        key = Key("PK").eq(keys.channel_messages_pk(workspace, channel)) & Key("SK").gt(
            keys.message_sk(since)
        )
        return self._page_backwards(key, limit)

    def _page_backwards(self, key: Any, limit: int) -> MessagePage:
        """The newest `limit` messages of the key's range, and whether an older one exists (one more is
        read to tell). Pages stop at 1 MB: 100 messages of 16 KB take two."""
        found = query_up_to(self._messages, limit + 1, KeyConditionExpression=key, ScanIndexForward=False)
        messages = [items.message_from_item(i) for i in found[:limit]]
        messages.reverse()
        return MessagePage(messages, len(found) > limit)


def _reply_counted(table: str, reply: Message) -> dict[str, Any]:
    """The parent's side of a reply, in the reply's transaction: one more reply, its time the newest
    (ids, so times, grow in commit order per channel), on condition that the parent is a live message
    that is no reply itself."""
    assert reply.thread_id is not None
    return {
        "Update": {
            "TableName": table,
            "Key": keys.message_key(reply.workspace, reply.channel, reply.thread_id),
            "UpdateExpression": "ADD replyCount :one, threadVersion :one SET lastReplyAt = :ts",
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(deletedAt) "
            "AND attribute_not_exists(threadId)",
            "ExpressionAttributeValues": {":one": 1, ":ts": reply.ts},
        }
    }
