"""The sweeper's work list: stale connections and overdue presence leaves, from the sparse `Due` index."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key

from parley.models import DueItem
from parley.store import items, keys
from parley.store.tables import TableAccess, query_up_to


class DueStore(TableAccess):
    def due_items(self, now_ms: int, per_shard: int = 100) -> list[DueItem]:
        """Items due by `now_ms`: one Query per shard of each kind, at most `per_shard` from each."""
        due: list[DueItem] = []
        for kind in (keys.CONNECTION_DUE, keys.PRESENCE_DUE):
            for shard in keys.due_shards(kind):
                found = query_up_to(
                    self._state,
                    per_shard,
                    IndexName="Due",
                    KeyConditionExpression=Key("dueShard").eq(shard) & Key("dueAt").lte(now_ms),
                )
                due.extend(items.due_item_from(kind, item) for item in found)
        return due
