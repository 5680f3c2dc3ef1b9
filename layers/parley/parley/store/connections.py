"""Connections with their subscriptions, presence and typing: the StateTable's live, TTL'd items.

They live together because a join writes all three (connection, subscription, presence) in one
transaction, and a leave undoes them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key

from parley.errors import QuotaExceeded
from parley.models import Caller, Connection, PresencePage, Subscriber
from parley.store import items, keys
from parley.store.calls import ConditionFailed, attempt, call, transact, unwrap, written
from parley.store.tables import TableAccess, query_all, query_up_to

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class ConnectionStore(TableAccess):
    # ---- connections ---------------------------------------------------------------------------

    def put_connection(self, caller: Caller, connected_at_ms: int, expires_at_s: int) -> None:
        call(self._state.put_item, Item=items.connection_item(caller, connected_at_ms, expires_at_s))

    def get_connection(self, connection_id: str) -> Connection | None:
        item = call(self._state.get_item, Key=keys.connection_key(connection_id)).get("Item")
        return None if item is None else items.connection_from_item(connection_id, item)

    def touch_connection(self, connection_id: str, expires_at_s: int, *, min_step_s: int = 0) -> bool:
        """Push back a live connection's expiry (heartbeat); False if the connection is unknown.

        Only written when it moves the stored `dueAt` on by `min_step_s` or more: a heartbeat soon
        after the last write changes nothing (no write unit, no `Due` index write, no stream record).
        """
        due_ms = expires_at_s * 1000
        outcome = attempt(
            self._state.update_item,
            Key=keys.connection_key(connection_id),
            UpdateExpression="SET expiresAt = :e, dueAt = :d",
            ConditionExpression="attribute_exists(PK) AND (attribute_not_exists(dueAt) OR dueAt <= :old)",
            ExpressionAttributeValues={":e": expires_at_s, ":d": due_ms, ":old": due_ms - min_step_s * 1000},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if isinstance(outcome, ConditionFailed):
            return outcome.old_item is not None  # known, and recent enough: nothing to write
        unwrap(outcome)
        return True

    def delete_connection(self, connection_id: str) -> None:
        call(self._state.delete_item, Key=keys.connection_key(connection_id))

    # ---- a user's connection slots (the connections-per-user quota) -----------------------------

    def _slots(self, workspace: str, user_id: str) -> list[dict[str, Any]]:
        return query_all(
            self._state,
            Key("PK").eq(keys.connection_slots_pk(workspace, user_id))
            & Key("SK").begins_with(keys.SLOT_PREFIX),
        )

    def claim_connection_slot(self, caller: Caller, max_slots: int, now_s: int, expires_at_s: int) -> bool:
        """Take one of the user's `max_slots` connection slots for this connection; False when every
        one is held by a live connection.

        One Query of the user's slots (and directory entry), then a conditional put of a free one
        (absent, or held by a connection past its expiry): two connections racing for the same slot
        cannot both win, so the quota holds under concurrency. Safe to run twice for one connection
        (it finds its own slot).
        """
        # The whole partition: the slots and the user's directory entry (parley.store.conversations),
        # so a user's first connect in a workspace adds them to its directory, and later ones read it
        # in the same Query and write nothing more.
        partition = query_all(
            self._state, Key("PK").eq(keys.connection_slots_pk(caller.workspace, caller.user.id))
        )
        profile = next((i for i in partition if i["SK"] == keys.PROFILE_SK), None)
        if profile is None or profile.get("userName") != caller.user.name:
            # only once a slot is taken: a refused connect adds nobody to the directory
            claimed = self._claim_slot(caller, partition, max_slots, now_s, expires_at_s)
            if claimed:
                item = items.profile_item(caller.workspace, caller.user, now_s * 1000)
                call(self._state.put_item, Item=item)
            return claimed
        return self._claim_slot(caller, partition, max_slots, now_s, expires_at_s)

    def _claim_slot(
        self, caller: Caller, partition: list[dict[str, Any]], max_slots: int, now_s: int, expires_at_s: int
    ) -> bool:
        held = {
            items.as_int(str(i["SK"])[len(keys.SLOT_PREFIX) :]): i
            for i in partition
            if str(i["SK"]).startswith(keys.SLOT_PREFIX)
        }
        if any(i.get("connectionId") == caller.connection_id for i in held.values()):
            return True
        live = {n for n, i in held.items() if items.as_int(i.get("expiresAt", 0)) > now_s}
        for slot in (n for n in range(max_slots) if n not in live):
            item = {
                **keys.connection_slot_key(caller.workspace, caller.user.id, slot),
                "kind": "slot",
                "connectionId": caller.connection_id,
                "expiresAt": expires_at_s,
            }
            if written(
                self._state.put_item,
                Item=item,
                ConditionExpression="attribute_not_exists(PK) OR expiresAt <= :now",
                ExpressionAttributeValues={":now": now_s},
            ):
                return True
        return False

    def release_connection_slot(self, workspace: str, user_id: str, connection_id: str) -> None:
        """Give back the slot this connection holds, if any (safe to run twice)."""
        for item in self._slots(workspace, user_id):
            if item.get("connectionId") == connection_id:
                written(
                    self._state.delete_item,
                    Key={"PK": item["PK"], "SK": item["SK"]},
                    ConditionExpression="connectionId = :c",
                    ExpressionAttributeValues={":c": connection_id},
                )

    def user_connections(self, workspace: str, user_id: str, now_s: int) -> list[str]:
        """The ids of the user's live connections, from their slots (a Query, never a Scan)."""
        return [
            str(i["connectionId"])
            for i in self._slots(workspace, user_id)
            if items.as_int(i.get("expiresAt", 0)) > now_s
        ]

    # ---- subscriptions -------------------------------------------------------------------------

    def subscribe(
        self, caller: Caller, channel: str, expires_at_s: int, *, max_channels: int | None = None
    ) -> bool:
        """Subscribe this connection and count it in the channel's presence, in one transaction (a
        user's first connection creates the presence item: an INSERT, `joins`).

        False, and nothing written, when the connection item is gone (forgotten as stale), so no orphan
        subscription is left. Two connections of one user joining at once conflict on the presence
        item; the loser tries again.

        With `max_channels`, QuotaExceeded (and nothing written) when the connection is already
        subscribed to that many other channels: the condition is on the connection item itself, so
        concurrent joins on one connection cannot overrun it.
        """
        state = self._tables.state_name
        condition = "attribute_exists(PK)"
        values: dict[str, Any] = {":c": {channel}}
        if max_channels is not None:
            condition += (
                " AND (attribute_not_exists(channels) OR size(channels) < :max OR contains(channels, :ch))"
            )
            values |= {":max": max_channels, ":ch": channel}
        transaction: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": state,
                    "Key": keys.connection_key(caller.connection_id),
                    "UpdateExpression": "ADD channels :c",
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                }
            },
            {"Put": {"TableName": state, "Item": items.subscription_item(caller, channel, expires_at_s)}},
            {
                "Update": {
                    "TableName": state,
                    "Key": keys.presence_key(caller.workspace, channel, caller.user.id),
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
        # the one condition is the connection item's: False when it is gone, else the quota refused
        if transact(self._client, transaction) is None:
            return True
        if max_channels is not None and self.get_connection(caller.connection_id) is not None:
            raise QuotaExceeded(f"a connection may join at most {max_channels} channels; leave one first")
        return False

    def unsubscribe(self, connection_id: str, workspace: str, channel: str) -> bool:
        """Remove one subscription; True if it existed. The connection item may already be gone."""
        old = call(
            self._state.delete_item,
            Key=keys.subscription_key(workspace, channel, connection_id),
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        written(
            self._state.update_item,
            Key=keys.connection_key(connection_id),
            UpdateExpression="DELETE channels :c",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":c": {channel}},
        )
        return old is not None

    def is_subscribed(self, connection_id: str, workspace: str, channel: str, now_s: int) -> bool:
        item = call(
            self._state.get_item,
            Key=keys.subscription_key(workspace, channel, connection_id),
            ProjectionExpression="expiresAt",
        ).get("Item")
        return item is not None and items.as_int(item.get("expiresAt", now_s + 1)) > now_s

    def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]:
        found = query_all(
            self._state,
            Key("PK").eq(keys.channel_state_pk(workspace, channel))
            & Key("SK").begins_with(keys.SUBSCRIPTION_PREFIX),
            filter_expression=Attr("expiresAt").gt(now_s),
            projection="connectionId, userId",
        )
        return [items.subscriber_from_item(i) for i in found]

    # ---- presence ------------------------------------------------------------------------------

    def presence_remove(
        self, workspace: str, channel: str, user_id: str, connection_id: str, leave_at_ms: int
    ) -> bool:
        """Count this connection out; True when it was the user's last one and the grace period started."""
        key = keys.presence_key(workspace, channel, user_id)
        outcome = attempt(
            self._state.update_item,
            Key=key,
            UpdateExpression="DELETE conns :c",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":c": {connection_id}},
            ReturnValues="ALL_NEW",
        )
        if isinstance(outcome, ConditionFailed):
            return False
        attrs = unwrap(outcome).get("Attributes", {})
        if attrs.get("conns") or "leaveAt" in attrs:
            return False
        leave_at_s = -(-leave_at_ms // 1000)
        # TTL (at the end of the grace) is only the backstop: the presence timer deletes on time.
        # The condition fails when the user re-joined meanwhile.
        return written(
            self._state.update_item,
            Key=key,
            UpdateExpression="SET leaveAt = :t, dueShard = :s, dueAt = :t, expiresAt = :e",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(conns)",
            ExpressionAttributeValues={
                ":t": leave_at_ms,
                ":s": keys.presence_due_shard(workspace, channel, user_id),
                ":e": leave_at_s,
            },
        )

    def finalize_leave(self, workspace: str, channel: str, user_id: str, now_ms: int) -> bool:
        """Delete a presence whose grace is over (a REMOVE: `leaves`); False if the user came back."""
        return written(
            self._state.delete_item,
            Key=keys.presence_key(workspace, channel, user_id),
            ConditionExpression="attribute_not_exists(conns) AND leaveAt <= :now",
            ExpressionAttributeValues={":now": now_ms},
        )

    def present_users(
        self, workspace: str, channel: str, now_s: int, *, limit: int, after: str | None = None
    ) -> PresencePage:
        """The first `limit` users present in a channel, in id order (the sort key's), after the user id
        `after` (exclusive) when given.

        One Query of the channel's `PRES#` items, read on past its pages: DynamoDB applies `Limit`
        (and the 1 MB page) before the expiry filter, so a page may come back short. One user more than
        asked for is read to tell `has_more`.
        """
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("PK").eq(keys.channel_state_pk(workspace, channel))
            & Key("SK").begins_with(keys.PRESENCE_PREFIX),
            "FilterExpression": Attr("expiresAt").gt(now_s),
            "ProjectionExpression": "userId, userName",
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = keys.presence_key(workspace, channel, after)
        found = query_up_to(self._state, limit + 1, **kwargs)
        users = [items.presence_user_from_item(i) for i in found]
        return PresencePage(users[:limit], len(users) > limit)

    # ---- typing --------------------------------------------------------------------------------

    def touch_typing(self, caller: Caller, channel: str, now_ms: int, window_ms: int) -> bool:
        """Record a typing signal unless one was recorded within the window; True when recorded."""
        return written(
            self._state.put_item,
            Item=items.typing_item(caller, channel, now_ms, window_ms),
            ConditionExpression="attribute_not_exists(PK) OR #at <= :cutoff",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":cutoff": now_ms - window_ms},
        )
