"""DynamoDB data access, the only code that reads or writes tables: one module per aggregate.

`keys` builds every key, `items` maps items to domain objects and back, `calls` turns SDK calls into
outcomes; `connections`, `channels`, `messages`, `message_changes`, `rates`, `due`, `reactions` and
`conversations` hold the access patterns. Every access is a key lookup or a Query (never a Scan);
docs/design.md lists the keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.store.channels import ChannelStore
from parley.store.connections import ConnectionStore
from parley.store.conversations import ConversationStore
from parley.store.due import DueStore
from parley.store.keys import DUE_SHARDS
from parley.store.message_changes import MessageChangeStore
from parley.store.messages import MessageStore
from parley.store.rates import RateStore
from parley.store.reactions import ReactionStore
from parley.store.tables import Tables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBServiceResource

__all__ = ["DUE_SHARDS", "Store", "Tables"]


class Store(
    ConnectionStore,
    ChannelStore,
    MessageStore,
    MessageChangeStore,
    RateStore,
    DueStore,
    ReactionStore,
    ConversationStore,
):
    """Every aggregate's access patterns over one pair of tables: what the use cases' store ports are
    given in production (parley.ports.ChatStore, parley.ports.Subscribers)."""

    @classmethod
    def on(cls, resource: DynamoDBServiceResource, *, state_table: str, messages_table: str) -> Store:
        return cls(Tables.of(resource, state_table=state_table, messages_table=messages_table))
