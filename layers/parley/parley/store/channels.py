"""Workspaces, their channels and who is a member of which: the MessagesTable's directory items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from parley.errors import Conflict, QuotaExceeded
from parley.models import Channel
from parley.store import items, keys
from parley.store.calls import CONDITION_FAILED, call, transact, written
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

    def create_channel(
        self,
        channel: Channel,
        now_ms: int,
        *,
        max_per_workspace: int | None = None,
        max_per_creator: int | None = None,
    ) -> None:
        """Create a channel with its creator as first member; Conflict if the name is taken,
        QuotaExceeded if the workspace or the creator has as many channels as allowed.

        The counts live on the workspace item and on the creator's `QUOTA` item and move in the same
        transaction as the channel, each conditional on staying within its quota: concurrent creators
        cannot overrun it, and a retried or refused create counts nothing (a cancelled transaction
        writes nothing)."""
        messages = self._tables.messages_name
        creator = items.member_item(channel.workspace, channel.created_by, channel.id, now_ms)
        transaction: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": messages,
                    "Item": items.channel_item(channel, now_ms),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": {"TableName": messages, "Item": creator}},
        ]
        quotas = [
            (keys.workspace_key(channel.workspace), max_per_workspace, "the workspace"),
            (keys.creator_count_key(channel.workspace, channel.created_by), max_per_creator, "you"),
        ]
        for key, limit, _ in quotas:
            if limit is not None:
                transaction.append(_count_within(messages, key, "channelCount", limit))
        cancelled = transact(self._client, transaction)
        if cancelled is None:
            return
        reasons = list(cancelled.reasons)
        if reasons and reasons[0] == CONDITION_FAILED:
            raise Conflict(f"channel '{channel.id}' already exists") from cancelled.cause
        counted = [(limit, who) for _, limit, who in quotas if limit is not None]
        for (limit, who), reason in zip(counted, reasons[2:], strict=False):
            if reason == CONDITION_FAILED:
                raise QuotaExceeded(f"{who} may create at most {limit} channels") from cancelled.cause
        raise Conflict(f"channel '{channel.id}' already exists") from cancelled.cause

    def is_member(self, workspace: str, user_id: str, channel: str) -> bool:
        key = keys.member_key(workspace, user_id, channel)
        return "Item" in call(self._messages.get_item, Key=key, ProjectionExpression="PK")

    def add_member(self, workspace: str, user_id: str, channel: str, now_ms: int) -> None:
        call(self._messages.put_item, Item=items.member_item(workspace, user_id, channel, now_ms))

    def invite_member(
        self, workspace: str, inviter: str, user_id: str, channel: str, now_ms: int, *, max_per_hour: int
    ) -> None:
        """Make `user_id` a member, counted against the inviter's invites of this clock hour in the same
        transaction (conditional, so concurrent invites cannot overrun it); QuotaExceeded when used up.
        The hour's count is a TTL'd StateTable item."""
        hour = now_ms // 3_600_000
        count = _count_within(
            self._tables.state_name,
            keys.invite_count_key(workspace, inviter, hour),
            "n",
            max_per_hour,
            expires_at_s=(hour + 2) * 3600,
        )
        member: TransactWriteItemTypeDef = {
            "Put": {
                "TableName": self._tables.messages_name,
                "Item": items.member_item(workspace, user_id, channel, now_ms),
            }
        }
        cancelled = transact(self._client, [count, member])
        if cancelled is not None:
            raise QuotaExceeded(
                f"you may send at most {max_per_hour} invites an hour; try again next hour"
            ) from cancelled.cause

    def remove_member(self, workspace: str, user_id: str, channel: str) -> bool:
        """End a membership; True if there was one."""
        return written(
            self._messages.delete_item,
            Key=keys.member_key(workspace, user_id, channel),
            ConditionExpression="attribute_exists(PK)",
        )

    def list_channels(self, workspace: str) -> list[Channel]:
        found = query_all(
            self._messages,
            Key("PK").eq(keys.workspace_pk(workspace)) & Key("SK").begins_with(keys.CHANNEL_PREFIX),
        )
        return [items.channel_from_item(workspace, item) for item in found]

    def member_channels(self, workspace: str, user_id: str) -> set[str]:
        key = Key("PK").eq(keys.member_pk(workspace, user_id)) & Key("SK").begins_with(keys.CHANNEL_PREFIX)
        return {str(item["channel"]) for item in query_all(self._messages, key)}


def _count_within(
    table: str, key: dict[str, str], attribute: str, limit: int, *, expires_at_s: int | None = None
) -> TransactWriteItemTypeDef:
    """A transaction item adding one to a counter, on condition that it stays within `limit` (and
    setting the item's TTL when given)."""
    values: dict[str, Any] = {":one": 1, ":limit": limit}
    update = "ADD #n :one"
    if expires_at_s is not None:
        update += " SET expiresAt = :exp"
        values[":exp"] = expires_at_s
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": update,
            "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
            "ExpressionAttributeNames": {"#n": attribute},
            "ExpressionAttributeValues": values,
        }
    }
