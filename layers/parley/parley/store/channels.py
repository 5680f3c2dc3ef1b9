"""Workspaces, their channels and who is a member of which: the MessagesTable's directory items."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boto3.dynamodb.conditions import Key

from parley.errors import Conflict
from parley.models import Channel
from parley.store import items, keys
from parley.store.calls import call, transact
from parley.store.tables import TableAccess, query_all

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class ChannelStore(TableAccess):
    def workspace_exists(self, workspace: str) -> bool:
        return "Item" in call(self._messages.get_item, Key=keys.workspace_key(workspace))

    def create_workspace(self, workspace: str, default_channels: list[str], now_ms: int) -> None:
        """Create the workspace and its public default channels once; a concurrent creator wins quietly."""
        new = [items.workspace_item(workspace, now_ms)]
        new += [items.channel_item(Channel(workspace, name, False, ""), now_ms) for name in default_channels]
        transaction: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._tables.messages_name,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for item in new
        ]
        transact(self._client, transaction)  # a failed condition: a concurrent creator won, quietly

    def get_channel(self, workspace: str, channel: str) -> Channel | None:
        item = call(self._messages.get_item, Key=keys.channel_key(workspace, channel)).get("Item")
        return None if item is None else items.channel_from_item(workspace, item)

    def create_channel(self, channel: Channel, now_ms: int) -> None:
        """Create a channel with its creator as first member; Conflict if the name is taken."""
        messages = self._tables.messages_name
        creator = items.member_item(channel.workspace, channel.created_by, channel.id, now_ms)
        cancelled = transact(
            self._client,
            [
                {
                    "Put": {
                        "TableName": messages,
                        "Item": items.channel_item(channel, now_ms),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": {"TableName": messages, "Item": creator}},
            ],
        )
        if cancelled is not None:  # the one condition: the channel item must not exist
            raise Conflict(f"channel '{channel.id}' already exists") from cancelled.cause

    def is_member(self, workspace: str, user_id: str, channel: str) -> bool:
        key = keys.member_key(workspace, user_id, channel)
        return "Item" in call(self._messages.get_item, Key=key, ProjectionExpression="PK")

    def add_member(self, workspace: str, user_id: str, channel: str, now_ms: int) -> None:
        call(self._messages.put_item, Item=items.member_item(workspace, user_id, channel, now_ms))

    def list_channels(self, workspace: str) -> list[Channel]:
        found = query_all(
            self._messages,
            Key("PK").eq(keys.workspace_pk(workspace)) & Key("SK").begins_with(keys.CHANNEL_PREFIX),
        )
        return [items.channel_from_item(workspace, item) for item in found]

    def member_channels(self, workspace: str, user_id: str) -> set[str]:
        key = Key("PK").eq(keys.member_pk(workspace, user_id)) & Key("SK").begins_with(keys.CHANNEL_PREFIX)
        return {str(item["channel"]) for item in query_all(self._messages, key)}
