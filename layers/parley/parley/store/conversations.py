"""Direct messages, the workspace's user directory, read marks and the unread counters.

The directory entry of a user is `PROFILE` in the partition of the user's connection slots (StateTable;
written by `$connect`, parley.store.connections). A DM is a private channel whose item sits in its
own messages partition (`META`, keys.channel_key). Read marks and mention counts live in the partition
of the user's memberships, so `channels` reads all three with one Query; a channel's message count is
`COUNT` in its messages partition. The counts are kept by the counters consumer (parley.counters), off
the message write path, and never count a message twice (see `add_counted`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key

from parley.errors import StoreError
from parley.models import Channel, Count, ReadMark, ReadState, User
from parley.store import items, keys
from parley.store.calls import ConditionFailed, attempt, call, transact, unwrap
from parley.store.tables import TableAccess, query_all

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

BATCH_GET_MAX = 100  # keys per BatchGetItem
_UNPROCESSED_ATTEMPTS = 5
_COUNT_ATTEMPTS = 5


class ConversationStore(TableAccess):
    # ---- the user directory --------------------------------------------------------------------

    def users_of(self, workspace: str, user_ids: list[str]) -> dict[str, User]:
        """The ones of `user_ids` in the workspace's directory, with the name they last connected with."""
        found = self._conversation_batch_get(
            self._tables.state_name,
            [keys.profile_key(workspace, u) for u in dict.fromkeys(user_ids)],
            projection="userId, userName",
        )
        return {str(i["userId"]): User(str(i["userId"]), str(i["userName"])) for i in found}

    def known_users(self, workspace: str, user_ids: list[str]) -> set[str]:
        return set(self.users_of(workspace, user_ids))

    # ---- direct messages -----------------------------------------------------------------------

    def open_dm(self, channel: Channel, now_ms: int) -> tuple[Channel, bool]:
        """Create the DM and make its members members, in one transaction; (the DM, True if created).

        When it exists already (opened before, or by a concurrent open that won), the stored one
        comes back unchanged: opening is idempotent."""
        messages = self._tables.messages_name
        transaction: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": messages,
                    "Item": items.channel_item(channel, now_ms),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
        ]
        for user in channel.members:
            member = items.member_item(channel.workspace, user.id, channel.id, now_ms)
            transaction.append({"Put": {"TableName": messages, "Item": member}})
        if transact(self._client, transaction) is None:
            return channel, True
        stored = call(
            self._messages.get_item, Key=keys.channel_key(channel.workspace, channel.id), ConsistentRead=True
        ).get("Item")
        if stored is None:
            raise StoreError("direct message neither written nor found")
        return items.channel_from_item(channel.workspace, stored), False

    def channels_by_id(self, workspace: str, channel_ids: list[str]) -> dict[str, Channel]:
        found = self._conversation_batch_get(
            self._tables.messages_name, [keys.channel_key(workspace, c) for c in channel_ids]
        )
        channels = (items.channel_from_item(workspace, i) for i in found)
        return {c.id: c for c in channels}

    # ---- read state ----------------------------------------------------------------------------

    def read_state(self, workspace: str, user_id: str) -> ReadState:
        """Memberships, read marks and mention counts of a user: one Query of the user's partition."""
        state = ReadState()
        for item in query_all(self._messages, Key("PK").eq(keys.member_pk(workspace, user_id))):
            sk = str(item["SK"])
            if sk.startswith(keys.CHANNEL_PREFIX):
                state.memberships.add(str(item["channel"]))
            elif sk.startswith(keys.READ_PREFIX):
                state.marks[sk.removeprefix(keys.READ_PREFIX)] = _mark_of(item)
            elif sk.startswith(keys.MENTIONS_PREFIX):
                state.mentions[sk.removeprefix(keys.MENTIONS_PREFIX)] = items.as_int(item.get("n", 0))
        return state

    def channel_counts(self, workspace: str, channel_ids: list[str]) -> dict[str, Count]:
        found = self._conversation_batch_get(
            self._tables.messages_name, [keys.counter_key(workspace, c) for c in channel_ids]
        )
        return {str(i["channel"]): _count_of(i) for i in found}

    def counts_for(self, workspace: str, user_id: str, channel: str) -> tuple[Count, Count]:
        """(the channel's message count, the user's mention count there), read consistently."""
        channel_key, mention_key = (
            keys.counter_key(workspace, channel),
            keys.mention_count_key(workspace, user_id, channel),
        )
        found = self._conversation_batch_get(
            self._tables.messages_name, [channel_key, mention_key], consistent=True
        )
        by_sk = {str(i["SK"]): _count_of(i) for i in found}
        return by_sk.get(channel_key["SK"], Count()), by_sk.get(mention_key["SK"], Count())

    def count_between(
        self, workspace: str, channel: str, after: str, upto: str, user_id: str
    ) -> tuple[int, int]:
        """(messages, of them mentioning `user_id`) with ids in (after, upto]: a COUNT Query, which reads
        those messages' keys and no history is returned (read units: their size, 1 MB a page)."""
        key = Key("PK").eq(keys.channel_messages_pk(workspace, channel)) & Key("SK").between(
            keys.message_sk(f"{int(after) + 1:017d}"), keys.message_sk(upto)
        )
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": key,
            "FilterExpression": Attr("mentions").contains(user_id),
            "Select": "COUNT",
        }
        scanned = matched = 0
        while True:
            page = call(self._messages.query, **kwargs)
            scanned += int(page.get("ScannedCount", 0))
            matched += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return scanned, matched
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_read_mark(self, workspace: str, user_id: str, channel: str) -> ReadMark | None:
        item = call(
            self._messages.get_item, Key=keys.read_key(workspace, user_id, channel), ConsistentRead=True
        ).get("Item")
        return None if item is None else _mark_of(item)

    def save_read_mark(self, workspace: str, user_id: str, channel: str, mark: ReadMark, now_ms: int) -> bool:
        """Move the mark forward; False (nothing written) when it is at `mark.message_id` or later."""
        outcome = attempt(
            self._messages.update_item,
            Key=keys.read_key(workspace, user_id, channel),
            UpdateExpression="SET kind = :k, messageId = :id, n = :n, mentions = :m, readAt = :at",
            ConditionExpression="attribute_not_exists(messageId) OR messageId < :id",
            ExpressionAttributeValues={
                ":k": "read",
                ":id": mark.message_id,
                ":n": mark.n,
                ":m": mark.mentions,
                ":at": now_ms,
            },
        )
        if isinstance(outcome, ConditionFailed):
            return False
        unwrap(outcome)
        return True

    # ---- the counters consumer -----------------------------------------------------------------

    def count_channel_messages(self, workspace: str, channel: str, message_ids: list[str]) -> int:
        return self.add_counted(keys.counter_key(workspace, channel), channel, message_ids)

    def count_mentions(self, workspace: str, user_id: str, channel: str, message_ids: list[str]) -> int:
        return self.add_counted(keys.mention_count_key(workspace, user_id, channel), channel, message_ids)

    def add_counted(self, key: dict[str, str], channel: str, message_ids: list[str]) -> int:
        """Count the ids above the counter's `lastId`, and raise it to the highest: one UpdateItem when
        every id is new (the usual case), a compare-and-set on the stored `lastId` otherwise.

        A retried stream batch re-sends ids already counted; they are at or below `lastId`, so they
        are not counted again. The price: a message whose stream record comes after a higher id's of
        the same channel (DynamoDB orders records per item, not per partition) is not counted."""
        ids = sorted(set(message_ids))
        values: dict[str, Any] = {":k": "count", ":ch": channel, ":top": ids[-1]}
        condition = "attribute_not_exists(lastId) OR lastId < :low"
        values[":low"] = ids[0]
        added = len(ids)
        for _ in range(_COUNT_ATTEMPTS):
            outcome = attempt(
                self._messages.update_item,
                Key=key,
                UpdateExpression="SET kind = :k, channel = :ch, lastId = :top ADD n :add",
                ConditionExpression=condition,
                ExpressionAttributeValues=values | {":add": added},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            if not isinstance(outcome, ConditionFailed):
                unwrap(outcome)
                return added
            last = str((outcome.old_item or {}).get("lastId", ""))
            fresh = [i for i in ids if i > last]
            if not fresh:
                return 0  # the whole batch was counted before: a retry
            added = len(fresh)
            condition = "lastId = :last"
            values = {":k": "count", ":ch": channel, ":top": fresh[-1], ":last": last}
        raise StoreError("counter contention: too many writers of one counter")

    # ---- helpers -------------------------------------------------------------------------------

    def _conversation_batch_get(
        self,
        table: str,
        wanted: list[dict[str, str]],
        *,
        projection: str | None = None,
        consistent: bool = False,
    ) -> list[dict[str, Any]]:
        """Every item of `wanted` that exists, 100 keys a call, reading `UnprocessedKeys` again."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GET_MAX):
            request: dict[str, Any] = {
                "Keys": wanted[start : start + BATCH_GET_MAX],
                "ConsistentRead": consistent,
            }
            if projection is not None:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {table: request}
            for _ in range(_UNPROCESSED_ATTEMPTS):
                page = call(self._client.batch_get_item, RequestItems=pending)
                # the resource's client: Python values in and out, as for transactions
                found.extend(page.get("Responses", {}).get(table, []))
                pending = dict(page.get("UnprocessedKeys") or {})
                if not pending:
                    break
            else:
                raise StoreError("BatchGetItem left keys unprocessed")
        return found


def _count_of(item: dict[str, Any]) -> Count:
    return Count(items.as_int(item.get("n", 0)), str(item.get("lastId", "")))


def _mark_of(item: dict[str, Any]) -> ReadMark:
    return ReadMark(
        str(item["messageId"]), items.as_int(item.get("n", 0)), items.as_int(item.get("mentions", 0))
    )
