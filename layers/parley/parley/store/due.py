"""The sweeper's work list: stale connections and overdue presence leaves, from the sparse `Due` index."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from parley.models import DuePage
from parley.store import items, keys
from parley.store.calls import call
from parley.store.tables import TableAccess

# The index projects only these (INCLUDE); asking for them keeps a read from relying on anything else.
_PROJECTION = ", ".join(keys.DUE_PROJECTED)


class DueStore(TableAccess):
    def due_shards(self) -> list[str]:
        return keys.all_due_shards()

    def due_page(self, shard: str, now_ms: int, limit: int, after: dict[str, Any] | None = None) -> DuePage:
        """Up to `limit` items of one shard due by `now_ms`, oldest first, continuing after `after`.

        The index is eventually consistent: an item listed here may have been refreshed since (a
        heartbeat) or already finished; the sweeper checks the table before acting.
        """
        kwargs: dict[str, Any] = {
            "IndexName": "Due",
            "KeyConditionExpression": Key("dueShard").eq(shard) & Key("dueAt").lte(now_ms),
            "ProjectionExpression": _PROJECTION,
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = after
        page = call(self._state.query, **kwargs)
        kind = keys.due_kind(shard)
        found = [items.due_item_from(kind, item) for item in page["Items"]]
        return DuePage(found, page.get("LastEvaluatedKey"))

    def connection_due(self, connection_id: str, now_ms: int) -> bool:
        """Whether a connection is still due, read from the table itself (strongly consistent): the
        index may list a connection a heartbeat has refreshed since. False if it is gone."""
        item = call(
            self._state.get_item,
            Key=keys.connection_key(connection_id),
            ProjectionExpression="dueAt",
            ConsistentRead=True,
        ).get("Item")
        return item is not None and "dueAt" in item and items.as_int(item["dueAt"]) <= now_ms
