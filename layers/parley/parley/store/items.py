"""Stored items and domain objects, mapped both ways: one typed constructor per item kind, one decoder each.

Stream images carry the same attributes as the items, so fan-out decodes them with these codecs too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from parley.models import Caller, Channel, Connection, DueItem, Message, Subscriber, User
from parley.store import keys

Item = dict[str, Any]


def as_int(value: Any) -> int:
    """DynamoDB numbers come back as Decimal (or as strings from some endpoints)."""
    return int(value) if isinstance(value, Decimal | int) else int(str(value))


# ---- StateTable -------------------------------------------------------------------------------------


def connection_item(caller: Caller, connected_at_ms: int, expires_at_s: int) -> Item:
    return {
        **keys.connection_key(caller.connection_id),
        "kind": "connection",
        "connectionId": caller.connection_id,
        "userId": caller.user.id,
        "userName": caller.user.name,
        "workspace": caller.workspace,
        "connectedAt": connected_at_ms,
        "tokenExp": caller.token_expires_at,
        "expiresAt": expires_at_s,
        "dueShard": keys.connection_due_shard(caller.connection_id),
        "dueAt": expires_at_s * 1000,
    }


def connection_from_item(connection_id: str, item: Item) -> Connection:
    return Connection(
        connection_id=connection_id,
        user=User(str(item["userId"]), str(item["userName"])),
        workspace=str(item["workspace"]),
        channels=frozenset(str(c) for c in item.get("channels", set())),
    )


def subscription_item(caller: Caller, channel: str, expires_at_s: int) -> Item:
    return {
        **keys.subscription_key(caller.workspace, channel, caller.connection_id),
        "kind": "subscription",
        "connectionId": caller.connection_id,
        "userId": caller.user.id,
        "expiresAt": expires_at_s,
    }


def subscriber_from_item(item: Item) -> Subscriber:
    return Subscriber(str(item["connectionId"]), str(item["userId"]))


def presence_user_from_item(item: Item) -> User:
    return User(str(item["userId"]), str(item["userName"]))


def typing_item(caller: Caller, channel: str, now_ms: int, window_ms: int) -> Item:
    return {
        **keys.typing_key(caller.workspace, channel, caller.user.id),
        "kind": "typing",
        "workspace": caller.workspace,
        "channel": channel,
        "userId": caller.user.id,
        "userName": caller.user.name,
        "at": now_ms,
        "expiresAt": (now_ms + window_ms) // 1000 + 1,
    }


def rate_item(workspace: str, user_id: str, tat: int, expires_at_s: int, bucket: str = "message") -> Item:
    key = keys.rate_key(workspace, user_id, bucket)
    return {**key, "kind": "rate", "tat": tat, "expiresAt": expires_at_s}


def tat_from_item(item: Item) -> int:
    return as_int(item["tat"])


def due_item_from(kind: str, item: Item) -> DueItem:
    """A sweeper's task from an item of the `Due` index (`kind` is the shard prefix it was found under)."""
    if kind == keys.CONNECTION_DUE:
        return DueItem("connection", connection_id=str(item["connectionId"]))
    return DueItem(
        "presence",
        workspace=str(item["workspace"]),
        channel=str(item["channel"]),
        user_id=str(item["userId"]),
    )


# ---- MessagesTable ----------------------------------------------------------------------------------


def profile_item(workspace: str, user: User, now_ms: int) -> Item:
    """A user's directory entry (no TTL: it outlives the user's connections)."""
    return {
        **keys.profile_key(workspace, user.id),
        "kind": "profile",
        "userId": user.id,
        "userName": user.name,
        "since": now_ms,
    }


def workspace_item(workspace: str, now_ms: int) -> Item:
    return {**keys.workspace_key(workspace), "kind": "workspace", "createdAt": now_ms}


def channel_item(channel: Channel, now_ms: int) -> Item:
    item: Item = {
        **keys.channel_key(channel.workspace, channel.id),
        "kind": "channel",
        "name": channel.name,
        "private": channel.private,
        "createdBy": channel.created_by,
        "createdAt": now_ms,
        "invitePolicy": channel.invite_policy,
    }
    if channel.dm:
        # a DM's key is not `CHAN#{id}`, so the id is kept on the item
        item |= {
            "id": channel.id,
            "dm": True,
            "members": [{"id": u.id, "name": u.name} for u in channel.members],
        }
    return item


def channel_from_item(workspace: str, item: Item) -> Channel:
    """The id is the sort key's (a private channel's differs from its name); `name` is what people see."""
    channel_id = str(item.get("id", str(item["SK"]).removeprefix(keys.CHANNEL_PREFIX)))
    return Channel(
        workspace,
        channel_id,
        bool(item.get("private", False)),
        str(item.get("createdBy", "")),
        str(item.get("invitePolicy", "members")),
        str(item.get("name", channel_id)),
        tuple(User(str(m["id"]), str(m["name"])) for m in item.get("members", [])),
    )


def member_item(workspace: str, user_id: str, channel: str, now_ms: int) -> Item:
    return {
        **keys.member_key(workspace, user_id, channel),
        "kind": "member",
        "channel": channel,
        "since": now_ms,
    }


def message_item(message: Message) -> Item:
    item: Item = {
        **keys.message_key(message.workspace, message.channel, message.id),
        "kind": "message",
        "id": message.id,
        "workspace": message.workspace,
        "channel": message.channel,
        "ts": message.ts,
        "userId": message.user.id,
        "userName": message.user.name,
        "text": message.text,
    }
    if message.client_msg_id is not None:
        item["clientMsgId"] = message.client_msg_id
    if message.thread_id is not None:
        item["threadId"] = message.thread_id
        item[keys.THREAD_KEY] = keys.thread_key(message.workspace, message.channel, message.thread_id)
    if message.app is not None:
        item["app"] = message.app
    if message.mentions:
        item["mentions"] = list(message.mentions)
    return item


def message_from_item(item: Item) -> Message:
    """A message from its stored item (also used on stream images, which have the same attributes)."""
    return Message(
        id=str(item["id"]),
        workspace=str(item["workspace"]),
        channel=str(item["channel"]),
        ts=str(item["ts"]),
        user=User(str(item["userId"]), str(item["userName"])),
        text=str(item.get("text", "")),  # a tombstone has none
        client_msg_id=item.get("clientMsgId"),
        thread_id=item.get("threadId"),
        version=as_int(item.get("version", 0)),
        edited_at=_optional_str(item.get("editedAt")),
        deleted_at=_optional_str(item.get("deletedAt")),
        reply_count=as_int(item.get("replyCount", 0)),
        last_reply_at=_optional_str(item.get("lastReplyAt")),
        thread_version=as_int(item.get("threadVersion", 0)),
        app=item.get("app"),
        mentions=tuple(str(m) for m in item.get("mentions", [])),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
