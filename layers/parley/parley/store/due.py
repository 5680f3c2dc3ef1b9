"""The sweeper's work list: stale connections and overdue presence leaves, from the sparse `Due` index."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key

from parley.models import DueItem
from parley.store import items, keys
from parley.store.calls import call
from parley.store.tables import TableAccess


class DueStore(TableAccess):
    def due_items(self, now_ms: int, per_shard: int = 100) -> list[DueItem]:
        """Items due by `now_ms`: one Query per shard of each kind, at most `per_shard` from each."""
        due: list[DueItem] = []
        for kind in (keys.CONNECTION_DUE, keys.PRESENCE_DUE):
            for shard in keys.due_shards(kind):
                found = call(
                    self._state.query,
                    IndexName="Due",
                    KeyConditionExpression=Key("dueShard").eq(shard) & Key("dueAt").lte(now_ms),
                    Limit=per_shard,
                )["Items"]
                due.extend(items.due_item_from(kind, item) for item in found)
        return due
