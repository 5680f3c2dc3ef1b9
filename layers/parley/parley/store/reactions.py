"""Reactions: one user's names on a message and the message's counts, changed together in one transaction.

The counts only move when the user's item does (the same `TransactWriteItems`, each item conditioned on
what the use case saw), so a retried or repeated `react` can never count twice. Reading a page's
reactions is two range Queries over the page's message ids, never one call per message.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from parley.errors import StoreThrottled
from parley.models import ReactionChange, ReactionState, ReactionSummary
from parley.store import keys, reaction_items
from parley.store.calls import call, transact
from parley.store.items import Item
from parley.store.tables import TableAccess

_BATCH_ATTEMPTS = 5


class ReactionStore(TableAccess):
    def reaction_state(
        self, workspace: str, channel: str, message_id: str, user_id: str, *, consistent: bool = False
    ) -> ReactionState | None:
        """The message's counts and the user's names on it, in one BatchGetItem with the message
        itself; None when there is no such message, or it was deleted (a tombstone takes no reactions)."""
        wanted = {
            "message": keys.message_key(workspace, channel, message_id),
            "counts": keys.reactions_key(workspace, channel, message_id),
            "mine": keys.reacted_key(workspace, channel, user_id, message_id),
        }
        found = self._reaction_batch_get(list(wanted.values()), consistent=consistent)
        by_key = {(str(i["PK"]), str(i["SK"])): i for i in found}

        def item(name: str) -> Item | None:
            key = wanted[name]
            return by_key.get((key["PK"], key["SK"]))

        message = item("message")
        if message is None or "deletedAt" in message:
            return None
        return reaction_items.state_from_items(item("counts"), item("mine"))

    def _reaction_batch_get(self, wanted: list[dict[str, str]], *, consistent: bool) -> list[Item]:
        table = self._tables.messages_name
        request: dict[str, Any] = {table: {"Keys": wanted, "ConsistentRead": consistent}}
        found: list[Item] = []
        for _ in range(_BATCH_ATTEMPTS):
            page = call(self._client.batch_get_item, RequestItems=request)
            found.extend(page.get("Responses", {}).get(table, []))
            request = page.get("UnprocessedKeys") or {}
            if not request:
                return found
        # throttled past the SDK's retries: nothing was decided on, so the client may send it again
        raise StoreThrottled("BatchGetItem: keys left unprocessed")

    def apply_reaction(
        self, change: ReactionChange, seen: ReactionState, *, max_distinct: int, max_mine: int
    ) -> bool:
        """Write `change` as decided on `seen`: the user's item and the counts in one transaction, each
        conditioned on `seen` still holding where it matters. False when it no longer does (another
        writer came first, or the message went away): nothing was written, read again and decide anew."""
        messages = self._tables.messages_name
        transaction = [
            {"Update": {"TableName": messages, **self._mine_update(change, seen, max_mine)}}
            if change.added or seen.mine != {change.name}
            else {"Delete": {"TableName": messages, **self._mine_delete(change)}},
            {"Update": {"TableName": messages, **self._counts_update(change, seen, max_distinct)}},
        ]
        if change.added:
            # a message deleted meanwhile takes no new reaction (a tombstone has `deletedAt`)
            transaction.append(
                {
                    "ConditionCheck": {
                        "TableName": messages,
                        "Key": keys.message_key(change.workspace, change.channel, change.message_id),
                        "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(deletedAt)",
                    }
                }
            )
        return transact(self._client, transaction) is None

    @staticmethod
    def _mine_update(change: ReactionChange, seen: ReactionState, max_mine: int) -> dict[str, Any]:
        key = keys.reacted_key(change.workspace, change.channel, change.user.id, change.message_id)
        names = {"#names": "names"}
        if change.added:
            return {
                "Key": key,
                "UpdateExpression": "ADD #names :set SET kind = :k, userId = :u, messageId = :m",
                "ConditionExpression": "attribute_not_exists(#names) OR "
                "(NOT contains(#names, :name) AND size(#names) < :most)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    ":set": {change.name},
                    ":k": "reacted",
                    ":u": change.user.id,
                    ":m": change.message_id,
                    ":name": change.name,
                    ":most": max_mine,
                },
            }
        return {
            "Key": key,
            "UpdateExpression": "DELETE #names :set",
            "ConditionExpression": "contains(#names, :name)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":set": {change.name}, ":name": change.name},
        }

    @staticmethod
    def _mine_delete(change: ReactionChange) -> dict[str, Any]:
        """Removing the user's last name on the message removes the item, so none is left empty."""
        return {
            "Key": keys.reacted_key(change.workspace, change.channel, change.user.id, change.message_id),
            "ConditionExpression": "contains(#names, :name) AND size(#names) = :one",
            "ExpressionAttributeNames": {"#names": "names"},
            "ExpressionAttributeValues": {":name": change.name, ":one": 1},
        }

    @staticmethod
    def _counts_update(change: ReactionChange, seen: ReactionState, max_distinct: int) -> dict[str, Any]:
        count = seen.counts.get(change.name, 0)
        names = {
            "#c": keys.REACTION_COUNT_PREFIX + change.name,
            "#v": "v",
            "#ws": "workspace",
            "#ch": "channel",
        }
        values: dict[str, Any] = {
            ":one": 1,
            ":k": "reactions",
            ":ws": change.workspace,
            ":ch": change.channel,
            ":m": change.message_id,
            ":name": change.name,
            ":uid": change.user.id,
            ":un": change.user.name,
            ":added": change.added,
        }
        last = (
            "SET kind = :k, #ws = :ws, #ch = :ch, messageId = :m, lastName = :name, "
            "lastUserId = :uid, lastUserName = :un, lastAdded = :added"
        )
        if change.added and count == 0:
            update = f"{last} ADD #c :one, #d :one, #v :one"
            condition = "attribute_not_exists(#c) AND (attribute_not_exists(#d) OR #d < :most)"
            values[":most"] = max_distinct
        elif change.added:
            update, condition = f"{last} ADD #c :one, #v :one", "#c >= :one"
        elif count <= 1:
            # the name's last reaction: the name goes, and with it one of the message's distinct names
            update, condition = f"{last} REMOVE #c ADD #d :minus, #v :one", "#c = :one"
            values[":minus"] = -1
        else:
            update, condition = f"{last} ADD #c :minus, #v :one", "#c > :one"
            values[":minus"] = -1
        if "#d" in update:
            names["#d"] = "distinct"  # DynamoDB refuses a name the expressions do not use
        return {
            "Key": keys.reactions_key(change.workspace, change.channel, change.message_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def reaction_summaries(
        self, workspace: str, channel: str, user_id: str, first_id: str, last_id: str
    ) -> dict[str, ReactionSummary]:
        """The reactions of every message from `first_id` to `last_id` that ever had one, for `user_id`:
        a Query of the counts items in that range, then a consistent Query of the user's items in it
        (read after the counts, so the reader's `me` is never older than the version it comes with)."""
        pk = keys.channel_messages_pk(workspace, channel)
        counts = self._range(
            Key("PK").eq(pk)
            & Key("SK").between(keys.REACTIONS_PREFIX + first_id, keys.REACTIONS_PREFIX + last_id),
            consistent=False,
        )
        if not counts:
            return {}
        prefix = keys.reacted_prefix(user_id)
        mine = self._range(
            Key("PK").eq(pk) & Key("SK").between(prefix + first_id, prefix + last_id), consistent=True
        )
        mine_by_id = {reaction_items.message_id_of(i): i for i in mine}
        return {
            message_id: reaction_items.summary_from_items(item, mine_by_id.get(message_id))
            for item in counts
            for message_id in [reaction_items.message_id_of(item)]
        }

    def _range(self, key: Any, *, consistent: bool) -> list[Item]:
        kwargs: dict[str, Any] = {"KeyConditionExpression": key, "ConsistentRead": consistent}
        found: list[Item] = []
        while True:
            page = call(self._messages.query, **kwargs)
            found.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
