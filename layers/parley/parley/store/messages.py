"""Channel messages: appended in id order behind a per-channel head item, read back a page at a time."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from parley.errors import StoreError
from parley.ids import message_id_ms, next_message_id
from parley.models import Message, MessagePage
from parley.store import items, keys
from parley.store.calls import call, transact
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
            cancelled = transact(
                self._client,
                [
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
                ],
            )
            if cancelled is None:
                return message
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
