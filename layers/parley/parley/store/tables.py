"""The two tables and their client, shared by every access module; reading a Query past its pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parley.store.calls import call
from parley.store.items import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_dynamodb.service_resource import Table


@dataclass(frozen=True, slots=True)
class Tables:
    state: Table  # ephemeral: connections, subscriptions, presence, typing, rate (TTL)
    messages: Table  # durable: workspaces, channels, members, messages
    client: DynamoDBClient  # for transactions, which span items (and could span tables)
    state_name: str
    messages_name: str

    @classmethod
    def of(cls, resource: DynamoDBServiceResource, *, state_table: str, messages_table: str) -> Tables:
        return cls(
            resource.Table(state_table),
            resource.Table(messages_table),
            resource.meta.client,
            state_table,
            messages_table,
        )


class TableAccess:
    """Base of the access modules: each holds one aggregate's access patterns over the same tables."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._state = tables.state
        self._messages = tables.messages
        self._client = tables.client


def query_all(
    table: Table, key: Any, *, filter_expression: Any = None, projection: str | None = None
) -> list[Item]:
    """Every item of a Query, following `LastEvaluatedKey` (pages stop at 1 MB)."""
    kwargs: dict[str, Any] = {"KeyConditionExpression": key}
    if filter_expression is not None:
        kwargs["FilterExpression"] = filter_expression
    if projection is not None:
        kwargs["ProjectionExpression"] = projection
    items: list[Item] = []
    while True:
        page = call(table.query, **kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_up_to(table: Table, limit: int, **kwargs: Any) -> list[Item]:
    """Up to `limit` items of a Query, following `LastEvaluatedKey`: a page stops at 1 MB (or at its
    `Limit`, counted before any filter) before `limit` items may be found. Fewer than `limit` items
    means the Query has no more."""
    items: list[Item] = []
    while len(items) < limit:
        page = call(table.query, **kwargs, Limit=limit - len(items))
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items
