"""DynamoDB data access: the only module that reads or writes tables. Speaks in domain objects.

Every access is a key lookup or a Query (never a Scan); docs/design.md lists the keys.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import BotoCoreError, ClientError

from parley.clock import iso_ms
from parley.errors import Conflict, StoreError, StoreThrottled
from parley.ids import message_id_ms, next_message_id
from parley.models import (
    Caller,
    Channel,
    Connection,
    DueItem,
    Message,
    MessagePage,
    PresencePage,
    Subscriber,
    User,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBServiceResource
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

DUE_SHARDS = 10
_THROTTLES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
_APPEND_ATTEMPTS = 8
_SUBSCRIBE_ATTEMPTS = 3


@contextmanager
def _translated() -> Iterator[None]:
    """Map SDK failures to domain errors, keeping the cause for logs."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _THROTTLES:
            raise StoreThrottled(code) from exc
        raise StoreError(code or "ClientError") from exc
    except BotoCoreError as exc:
        raise StoreError(type(exc).__name__) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _shard(value: str) -> int:
    return zlib.crc32(value.encode()) % DUE_SHARDS


def _chan_state_pk(workspace: str, channel: str) -> str:
    return f"CHAN#{workspace}#{channel}"


def _chan_msgs_pk(workspace: str, channel: str) -> str:
    return f"WS#{workspace}#CHAN#{channel}"


def _int(value: Any) -> int:
    return int(value) if isinstance(value, Decimal | int) else int(str(value))


def _message_item(message: Message) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": _chan_msgs_pk(message.workspace, message.channel),
        "SK": f"MSG#{message.id}",
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
    return item


def message_from_item(item: dict[str, Any]) -> Message:
    """A message from its stored item (also used on stream images, which have the same attributes)."""
    return Message(
        id=str(item["id"]),
        workspace=str(item["workspace"]),
        channel=str(item["channel"]),
        ts=str(item["ts"]),
        user=User(str(item["userId"]), str(item["userName"])),
        text=str(item["text"]),
        client_msg_id=item.get("clientMsgId"),
        thread_id=item.get("threadId"),
    )


class Store:
    def __init__(self, resource: DynamoDBServiceResource, *, state_table: str, messages_table: str) -> None:
        self._state = resource.Table(state_table)
        self._messages = resource.Table(messages_table)
        self._client = resource.meta.client
        self._state_name = state_table
        self._messages_name = messages_table

    # ---- connections ---------------------------------------------------------------------------

    def put_connection(self, caller: Caller, connected_at_ms: int, expires_at_s: int) -> None:
        with _translated():
            self._state.put_item(
                Item={
                    "PK": f"CONN#{caller.connection_id}",
                    "SK": "META",
                    "kind": "connection",
                    "connectionId": caller.connection_id,
                    "userId": caller.user.id,
                    "userName": caller.user.name,
                    "workspace": caller.workspace,
                    "connectedAt": connected_at_ms,
                    "tokenExp": caller.token_expires_at,
                    "expiresAt": expires_at_s,
                    "dueShard": f"conn#{_shard(caller.connection_id)}",
                    "dueAt": expires_at_s * 1000,
                }
            )

    def get_connection(self, connection_id: str) -> Connection | None:
        with _translated():
            item = self._state.get_item(Key={"PK": f"CONN#{connection_id}", "SK": "META"}).get("Item")
        if item is None:
            return None
        return Connection(
            connection_id=connection_id,
            user=User(str(item["userId"]), str(item["userName"])),
            workspace=str(item["workspace"]),
            channels=frozenset(str(c) for c in item.get("channels", set())),  # type: ignore[union-attr]
        )

    def touch_connection(self, connection_id: str, expires_at_s: int) -> bool:
        """Push back a live connection's expiry (heartbeat); False if the connection is unknown."""
        return _conditional(
            self._state.update_item,
            Key={"PK": f"CONN#{connection_id}", "SK": "META"},
            UpdateExpression="SET expiresAt = :e, dueAt = :d",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":e": expires_at_s, ":d": expires_at_s * 1000},
        )

    def delete_connection(self, connection_id: str) -> None:
        with _translated():
            self._state.delete_item(Key={"PK": f"CONN#{connection_id}", "SK": "META"})

    # ---- workspaces, channels, membership ------------------------------------------------------

    def workspace_exists(self, workspace: str) -> bool:
        with _translated():
            return "Item" in self._messages.get_item(Key={"PK": f"WS#{workspace}", "SK": "META"})

    def create_workspace(self, workspace: str, default_channels: list[str], now_ms: int) -> None:
        """Create the workspace and its public default channels once; a concurrent creator wins quietly."""
        items: list[dict[str, Any]] = [
            {"PK": f"WS#{workspace}", "SK": "META", "kind": "workspace", "createdAt": now_ms}
        ]
        for name in default_channels:
            items.append(self._channel_item(Channel(workspace, name, False, ""), now_ms))
        try:
            with _translated():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._messages_name,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(PK)",
                            }
                        }
                        for item in items
                    ]
                )
        except StoreError as exc:
            if _code_of(exc) != "TransactionCanceledException":
                raise

    @staticmethod
    def _channel_item(channel: Channel, now_ms: int) -> dict[str, Any]:
        return {
            "PK": f"WS#{channel.workspace}",
            "SK": f"CHAN#{channel.id}",
            "kind": "channel",
            "name": channel.id,
            "private": channel.private,
            "createdBy": channel.created_by,
            "createdAt": now_ms,
        }

    @staticmethod
    def _channel_from(workspace: str, item: dict[str, Any]) -> Channel:
        return Channel(
            workspace, str(item["name"]), bool(item.get("private", False)), str(item.get("createdBy", ""))
        )

    def get_channel(self, workspace: str, channel: str) -> Channel | None:
        with _translated():
            item = self._messages.get_item(Key={"PK": f"WS#{workspace}", "SK": f"CHAN#{channel}"}).get("Item")
        return None if item is None else self._channel_from(workspace, item)

    def create_channel(self, channel: Channel, now_ms: int) -> None:
        """Create a channel with its creator as first member; Conflict if the name is taken."""
        try:
            with _translated():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._messages_name,
                                "Item": self._channel_item(channel, now_ms),
                                "ConditionExpression": "attribute_not_exists(PK)",
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._messages_name,
                                "Item": self._member_item(
                                    channel.workspace, channel.created_by, channel.id, now_ms
                                ),
                            }
                        },
                    ]
                )
        except StoreError as exc:
            if _code_of(exc) == "TransactionCanceledException":
                raise Conflict(f"channel '{channel.id}' already exists") from exc
            raise

    @staticmethod
    def _member_item(workspace: str, user_id: str, channel: str, now_ms: int) -> dict[str, Any]:
        return {
            "PK": f"WS#{workspace}#USER#{user_id}",
            "SK": f"CHAN#{channel}",
            "kind": "member",
            "channel": channel,
            "since": now_ms,
        }

    def is_member(self, workspace: str, user_id: str, channel: str) -> bool:
        with _translated():
            key = {"PK": f"WS#{workspace}#USER#{user_id}", "SK": f"CHAN#{channel}"}
            return "Item" in self._messages.get_item(Key=key, ProjectionExpression="PK")

    def add_member(self, workspace: str, user_id: str, channel: str, now_ms: int) -> None:
        with _translated():
            self._messages.put_item(Item=self._member_item(workspace, user_id, channel, now_ms))

    def list_channels(self, workspace: str) -> list[Channel]:
        items = self._query(self._messages, Key("PK").eq(f"WS#{workspace}") & Key("SK").begins_with("CHAN#"))
        return [self._channel_from(workspace, item) for item in items]

    def member_channels(self, workspace: str, user_id: str) -> set[str]:
        key = Key("PK").eq(f"WS#{workspace}#USER#{user_id}") & Key("SK").begins_with("CHAN#")
        return {str(item["channel"]) for item in self._query(self._messages, key)}

    # ---- subscriptions -------------------------------------------------------------------------

    def subscribe(self, caller: Caller, channel: str, expires_at_s: int) -> bool:
        """Subscribe this connection and count it in the channel's presence, in one transaction (a
        user's first connection creates the presence item: an INSERT, `joins`).

        False, and nothing written, when the connection item is gone (forgotten as stale), so no orphan
        subscription is left. Two connections of one user joining at once conflict on the presence
        item; the loser tries again.
        """
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self._state_name,
                    "Key": {"PK": f"CONN#{caller.connection_id}", "SK": "META"},
                    "UpdateExpression": "ADD channels :c",
                    "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeValues": {":c": {channel}},
                }
            },
            {
                "Put": {
                    "TableName": self._state_name,
                    "Item": {
                        "PK": _chan_state_pk(caller.workspace, channel),
                        "SK": f"SUB#{caller.connection_id}",
                        "kind": "subscription",
                        "connectionId": caller.connection_id,
                        "userId": caller.user.id,
                        "expiresAt": expires_at_s,
                    },
                }
            },
            {
                "Update": {
                    "TableName": self._state_name,
                    "Key": {"PK": _chan_state_pk(caller.workspace, channel), "SK": f"PRES#{caller.user.id}"},
                    "UpdateExpression": (
                        "SET kind = :k, userId = :u, userName = :n, workspace = :w, channel = :ch, "
                        "expiresAt = :e ADD conns :c REMOVE leaveAt, dueShard, dueAt"
                    ),
                    "ExpressionAttributeValues": {
                        ":k": "presence",
                        ":u": caller.user.id,
                        ":n": caller.user.name,
                        ":w": caller.workspace,
                        ":ch": channel,
                        ":e": expires_at_s,
                        ":c": {caller.connection_id},
                    },
                }
            },
        ]
        for _ in range(_SUBSCRIBE_ATTEMPTS):
            try:
                with _translated():
                    self._client.transact_write_items(TransactItems=items)
                return True
            except StoreError as exc:
                reasons = _cancellation_reasons(exc)
                if not reasons:
                    raise
                if reasons[0] == "ConditionalCheckFailed":
                    return False
                if "TransactionConflict" not in reasons:
                    raise
        raise StoreError("subscription contention: too many concurrent joins of one user")

    def unsubscribe(self, connection_id: str, workspace: str, channel: str) -> bool:
        """Remove one subscription; True if it existed. The connection item may already be gone."""
        with _translated():
            old = self._state.delete_item(
                Key={"PK": _chan_state_pk(workspace, channel), "SK": f"SUB#{connection_id}"},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        try:
            with _translated():
                self._state.update_item(
                    Key={"PK": f"CONN#{connection_id}", "SK": "META"},
                    UpdateExpression="DELETE channels :c",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues={":c": {channel}},
                )
        except StoreError as exc:
            if not _is_condition_failure(exc):
                raise
        return old is not None

    def is_subscribed(self, connection_id: str, workspace: str, channel: str, now_s: int) -> bool:
        with _translated():
            item = self._state.get_item(
                Key={"PK": _chan_state_pk(workspace, channel), "SK": f"SUB#{connection_id}"},
                ProjectionExpression="expiresAt",
            ).get("Item")
        return item is not None and _int(item.get("expiresAt", now_s + 1)) > now_s

    def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]:
        items = self._query(
            self._state,
            Key("PK").eq(_chan_state_pk(workspace, channel)) & Key("SK").begins_with("SUB#"),
            filter_expression=Attr("expiresAt").gt(now_s),
            projection="connectionId, userId",
        )
        return [Subscriber(str(i["connectionId"]), str(i["userId"])) for i in items]

    # ---- presence ------------------------------------------------------------------------------

    def presence_remove(
        self, workspace: str, channel: str, user_id: str, connection_id: str, leave_at_ms: int
    ) -> bool:
        """Count this connection out; True when it was the user's last one and the grace period started."""
        key = {"PK": _chan_state_pk(workspace, channel), "SK": f"PRES#{user_id}"}
        try:
            with _translated():
                attrs = self._state.update_item(
                    Key=key,
                    UpdateExpression="DELETE conns :c",
                    ConditionExpression="attribute_exists(PK)",
                    ExpressionAttributeValues={":c": {connection_id}},
                    ReturnValues="ALL_NEW",
                ).get("Attributes", {})
        except StoreError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        if attrs.get("conns") or "leaveAt" in attrs:
            return False
        leave_at_s = -(-leave_at_ms // 1000)
        # TTL (at the end of the grace) is only the backstop: the presence timer deletes on time.
        # The condition fails when the user re-joined meanwhile.
        return _conditional(
            self._state.update_item,
            Key=key,
            UpdateExpression="SET leaveAt = :t, dueShard = :s, dueAt = :t, expiresAt = :e",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(conns)",
            ExpressionAttributeValues={
                ":t": leave_at_ms,
                ":s": f"pres#{_shard(workspace + channel + user_id)}",
                ":e": leave_at_s,
            },
        )

    def finalize_leave(self, workspace: str, channel: str, user_id: str, now_ms: int) -> bool:
        """Delete a presence whose grace is over (a REMOVE: `leaves`); False if the user came back."""
        return _conditional(
            self._state.delete_item,
            Key={"PK": _chan_state_pk(workspace, channel), "SK": f"PRES#{user_id}"},
            ConditionExpression="attribute_not_exists(conns) AND leaveAt <= :now",
            ExpressionAttributeValues={":now": now_ms},
        )

    def present_users(
        self, workspace: str, channel: str, now_s: int, *, limit: int, after: str | None = None
    ) -> PresencePage:
        """The first `limit` users present in a channel, in id order (the sort key's), after the user id
        `after` (exclusive) when given.

        One paged Query of the channel's `PRES#` items. DynamoDB applies `Limit` before the expiry
        filter, so a page may come back short: read on until one user more than asked for is found
        (it only tells `has_more`) or the partition ends.
        """
        pk = _chan_state_pk(workspace, channel)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("PK").eq(pk) & Key("SK").begins_with("PRES#"),
            "FilterExpression": Attr("expiresAt").gt(now_s),
            "ProjectionExpression": "userId, userName",
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"PK": pk, "SK": f"PRES#{after}"}
        users: list[User] = []
        with _translated():
            while len(users) <= limit:
                page = self._state.query(**kwargs)
                users.extend(User(str(i["userId"]), str(i["userName"])) for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return PresencePage(users[:limit], len(users) > limit)

    # ---- typing and rate -----------------------------------------------------------------------

    def touch_typing(self, caller: Caller, channel: str, now_ms: int, window_ms: int) -> bool:
        """Record a typing signal unless one was recorded within the window; True when recorded."""
        return _conditional(
            self._state.put_item,
            Item={
                "PK": _chan_state_pk(caller.workspace, channel),
                "SK": f"TYPING#{caller.user.id}",
                "kind": "typing",
                "workspace": caller.workspace,
                "channel": channel,
                "userId": caller.user.id,
                "userName": caller.user.name,
                "at": now_ms,
                "expiresAt": (now_ms + window_ms) // 1000 + 1,
            },
            ConditionExpression="attribute_not_exists(PK) OR #at <= :cutoff",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":cutoff": now_ms - window_ms},
        )

    def claim_rate_if_idle(
        self, workspace: str, user_id: str, now_ms: int, new: int, expires_at_s: int
    ) -> int | None:
        """Store `new` as the limiter state if the stored one is absent or not after `now_ms` (a user
        sending within their rate, the usual case: one write). Otherwise write nothing and return the
        stored state, for `save_rate_state`'s compare-and-set. None when written."""
        with _translated():
            try:
                self._state.put_item(
                    Item=self._rate_item(workspace, user_id, new, expires_at_s),
                    ConditionExpression="attribute_not_exists(tat) OR tat <= :now",
                    ExpressionAttributeValues={":now": now_ms},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                stored = exc.response.get("Item", {}).get("tat", {}).get("N")  # type: ignore[attr-defined]
                if stored is not None:
                    return int(stored)
        # The condition failed yet no old item came back (an endpoint without ReturnValuesOnCondition-
        # CheckFailure): read it. Gone meanwhile means idle again; the caller's compare-and-set decides.
        return self.rate_state(workspace, user_id) or now_ms

    @staticmethod
    def _rate_item(workspace: str, user_id: str, tat: int, expires_at_s: int) -> dict[str, Any]:
        return {
            "PK": f"RATE#{workspace}#{user_id}",
            "SK": "RATE",
            "kind": "rate",
            "tat": tat,
            "expiresAt": expires_at_s,
        }

    def rate_state(self, workspace: str, user_id: str) -> int | None:
        with _translated():
            item = self._state.get_item(Key={"PK": f"RATE#{workspace}#{user_id}", "SK": "RATE"}).get("Item")
        return None if item is None else _int(item["tat"])

    def save_rate_state(
        self, workspace: str, user_id: str, old: int | None, new: int, expires_at_s: int
    ) -> bool:
        """Compare-and-set the limiter state, so a user's concurrent connections cannot overspend."""
        item = self._rate_item(workspace, user_id, new, expires_at_s)
        if old is None:
            return _conditional(
                self._state.put_item, Item=item, ConditionExpression="attribute_not_exists(tat)"
            )
        return _conditional(
            self._state.put_item,
            Item=item,
            ConditionExpression="tat = :old",
            ExpressionAttributeValues={":old": old},
        )

    # ---- messages ------------------------------------------------------------------------------

    def append_message(self, draft: Message) -> Message:
        """Store a message with an id greater than every earlier one of its channel.

        The channel's head item and the message are written in one transaction whose condition is
        `lastId < id`, so stream order, id order and commit order agree: fan-out can deliver in id order.
        """
        pk = _chan_msgs_pk(draft.workspace, draft.channel)
        message = draft
        for _ in range(_APPEND_ATTEMPTS):
            try:
                with _translated():
                    self._client.transact_write_items(
                        TransactItems=[
                            {
                                "Update": {
                                    "TableName": self._messages_name,
                                    "Key": {"PK": pk, "SK": "HEAD"},
                                    "UpdateExpression": "SET lastId = :id, kind = :k",
                                    "ConditionExpression": "attribute_not_exists(lastId) OR lastId < :id",
                                    "ExpressionAttributeValues": {":id": message.id, ":k": "head"},
                                }
                            },
                            {"Put": {"TableName": self._messages_name, "Item": _message_item(message)}},
                        ]
                    )
                return message
            except StoreError as exc:
                if _code_of(exc) != "TransactionCanceledException":
                    raise
            with _translated():
                head = self._messages.get_item(Key={"PK": pk, "SK": "HEAD"}, ConsistentRead=True).get(
                    "Item", {}
                )
            last = str(head.get("lastId", message.id))
            new_id = next_message_id(max(last, message.id), message_id_ms(message.id))
            message = Message(
                id=new_id,
                workspace=draft.workspace,
                channel=draft.channel,
                ts=iso_ms(message_id_ms(new_id)),
                user=draft.user,
                text=draft.text,
                client_msg_id=draft.client_msg_id,
                thread_id=draft.thread_id,
            )
        raise StoreError("message id contention: too many concurrent writers")

    def get_message(self, workspace: str, channel: str, message_id: str) -> Message | None:
        with _translated():
            item = self._messages.get_item(
                Key={"PK": _chan_msgs_pk(workspace, channel), "SK": f"MSG#{message_id}"}
            ).get("Item")
        return None if item is None else message_from_item(item)

    def recent_messages(self, workspace: str, channel: str, limit: int) -> MessagePage:
        key = Key("PK").eq(_chan_msgs_pk(workspace, channel)) & Key("SK").begins_with("MSG#")
        return self._page_backwards(key, limit)

    def messages_before(self, workspace: str, channel: str, before: str, limit: int) -> MessagePage:
        upper = f"MSG#{int(before) - 1:017d}"
        key = Key("PK").eq(_chan_msgs_pk(workspace, channel)) & Key("SK").between("MSG#", upper)
        return self._page_backwards(key, limit)

    def messages_after(self, workspace: str, channel: str, since: str, limit: int) -> MessagePage:
        """The newest `limit` messages after `since`; has_more means some in between were left out."""
        key = Key("PK").eq(_chan_msgs_pk(workspace, channel)) & Key("SK").gt(f"MSG#{since}")
        return self._page_backwards(key, limit)

    def _page_backwards(self, key: Any, limit: int) -> MessagePage:
        with _translated():
            items = self._messages.query(KeyConditionExpression=key, ScanIndexForward=False, Limit=limit + 1)[
                "Items"
            ]
        page = [message_from_item(i) for i in items[:limit]]
        page.reverse()
        return MessagePage(page, len(items) > limit)

    # ---- the sweeper's index -------------------------------------------------------------------

    def due_items(self, now_ms: int, per_shard: int = 100) -> list[DueItem]:
        """Stale connections and overdue presence leaves, from the sparse `Due` index (Query per shard)."""
        due: list[DueItem] = []
        for prefix in ("conn", "pres"):
            for shard in range(DUE_SHARDS):
                with _translated():
                    items = self._state.query(
                        IndexName="Due",
                        KeyConditionExpression=Key("dueShard").eq(f"{prefix}#{shard}")
                        & Key("dueAt").lte(now_ms),
                        Limit=per_shard,
                    )["Items"]
                for item in items:
                    if prefix == "conn":
                        due.append(DueItem("connection", connection_id=str(item["connectionId"])))
                    else:
                        due.append(
                            DueItem(
                                "presence",
                                workspace=str(item["workspace"]),
                                channel=str(item["channel"]),
                                user_id=str(item["userId"]),
                            )
                        )
        return due

    # ---- helpers -------------------------------------------------------------------------------

    def _query(
        self,
        table: Any,
        key: Any,
        *,
        filter_expression: Any = None,
        projection: str | None = None,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"KeyConditionExpression": key}
        if filter_expression is not None:
            kwargs["FilterExpression"] = filter_expression
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        items: list[dict[str, Any]] = []
        with _translated():
            while True:
                page = table.query(**kwargs)
                items.extend(page["Items"])
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _code_of(exc: StoreError) -> str:
    cause = exc.__cause__
    return _code(cause) if isinstance(cause, ClientError) else ""


def _cancellation_reasons(exc: StoreError) -> list[str]:
    """The per-item codes of a cancelled transaction ("None" for items that were fine); [] otherwise."""
    cause = exc.__cause__
    if not isinstance(cause, ClientError) or _code(cause) != "TransactionCanceledException":
        return []
    return [str(r.get("Code", "None")) for r in cause.response.get("CancellationReasons", [])]


def _conditional(operation: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a conditional write; False when its condition did not hold (a normal outcome here)."""
    try:
        with _translated():
            operation(**kwargs)
    except StoreError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


def _is_condition_failure(exc: StoreError) -> bool:
    return _code_of(exc) == "ConditionalCheckFailedException"
