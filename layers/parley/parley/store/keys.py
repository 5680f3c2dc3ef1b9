"""Every partition and sort key of the two tables, and the shards of the sweeper's `Due` index.

No other module writes a key string; docs/design.md lists the same keys.
"""

from __future__ import annotations

import zlib

Key = dict[str, str]

# 32 shards per kind keep each `Due` partition near a quarter of DynamoDB's 1,000 WCU/s at 1M
# connections, and under it in a reconnect storm (the arithmetic is in docs/design.md). Raising it is
# safe (items written under fewer shards are still in shards the sweeper queries); lowering is not.
DUE_SHARDS = 32
CONNECTION_DUE = "conn"
PRESENCE_DUE = "pres"
# What the sweeper reads from the index besides its keys: the `INCLUDE` projection in template.yaml
DUE_PROJECTED = ("connectionId", "workspace", "channel", "userId")

SUBSCRIPTION_PREFIX = "SUB#"
PRESENCE_PREFIX = "PRES#"
CHANNEL_PREFIX = "CHAN#"
MESSAGE_PREFIX = "MSG#"
SLOT_PREFIX = "SLOT#"
# The sparse `Threads` index of MessagesTable: only replies carry its partition key, `threadKey`; its
# sort key is the table's own `SK` (`MSG#{id}`), so a thread's replies are in id order.
THREADS_INDEX = "Threads"
THREAD_KEY = "threadKey"
PROFILE_SK = "PROFILE"
READ_PREFIX = "READ#"
MENTIONS_PREFIX = "MENTIONS#"
DM_PREFIX = "dm."  # a direct message's channel id: `dm.` and 10 of [a-z0-9] (parley.ids.dm_channel_id)

# ---- StateTable -------------------------------------------------------------------------------------


def connection_key(connection_id: str) -> Key:
    return {"PK": f"CONN#{connection_id}", "SK": "META"}


def channel_state_pk(workspace: str, channel: str) -> str:
    """The partition of a channel's ephemeral items: subscriptions, presence, typing."""
    return f"CHAN#{workspace}#{channel}"


def subscription_key(workspace: str, channel: str, connection_id: str) -> Key:
    return {"PK": channel_state_pk(workspace, channel), "SK": f"{SUBSCRIPTION_PREFIX}{connection_id}"}


def presence_key(workspace: str, channel: str, user_id: str) -> Key:
    return {"PK": channel_state_pk(workspace, channel), "SK": f"{PRESENCE_PREFIX}{user_id}"}


def typing_key(workspace: str, channel: str, user_id: str) -> Key:
    return {"PK": channel_state_pk(workspace, channel), "SK": f"TYPING#{user_id}"}


def rate_key(workspace: str, user_id: str, bucket: str = "message") -> Key:
    """A user's limiter state for one action (`bucket`); `message` keeps the key it always had."""
    return {"PK": f"RATE#{workspace}#{user_id}", "SK": "RATE" if bucket == "message" else f"RATE#{bucket}"}


def connection_slots_pk(workspace: str, user_id: str) -> str:
    """The partition of a user's connection slots: one item per open connection, at most the quota."""
    return f"USER#{workspace}#{user_id}"


def profile_key(workspace: str, user_id: str) -> Key:
    """A user's entry in the workspace's user directory, next to the user's connection slots: the
    Query that reads the slots on `$connect` reads it too, so only a first connect writes it."""
    return {"PK": connection_slots_pk(workspace, user_id), "SK": PROFILE_SK}


def connection_slot_key(workspace: str, user_id: str, slot: int) -> Key:
    return {"PK": connection_slots_pk(workspace, user_id), "SK": f"{SLOT_PREFIX}{slot:04d}"}


def invite_count_key(workspace: str, user_id: str, hour: int) -> Key:
    """How many invites a user sent in one clock hour (epoch seconds // 3600)."""
    return {"PK": f"QUOTA#{workspace}#{user_id}", "SK": f"INVITES#{hour}"}


# ---- the sweeper's sparse `Due` index ---------------------------------------------------------------


def _shard(value: str) -> int:
    return zlib.crc32(value.encode()) % DUE_SHARDS


def connection_due_shard(connection_id: str) -> str:
    return f"{CONNECTION_DUE}#{_shard(connection_id)}"


def presence_due_shard(workspace: str, channel: str, user_id: str) -> str:
    return f"{PRESENCE_DUE}#{_shard(workspace + channel + user_id)}"


def due_shards(kind: str) -> list[str]:
    """Every `dueShard` value of one kind (`conn` or `pres`): the sweeper queries each."""
    return [f"{kind}#{shard}" for shard in range(DUE_SHARDS)]


def all_due_shards() -> list[str]:
    """Every `dueShard` value, connections' first."""
    return due_shards(CONNECTION_DUE) + due_shards(PRESENCE_DUE)


def due_kind(shard: str) -> str:
    """The kind (`conn` or `pres`) of a `dueShard` value."""
    return shard.split("#", 1)[0]


# ---- MessagesTable ----------------------------------------------------------------------------------


def workspace_pk(workspace: str) -> str:
    """The partition of a workspace's own item and its channels."""
    return f"WS#{workspace}"


def workspace_key(workspace: str) -> Key:
    return {"PK": workspace_pk(workspace), "SK": "META"}


def is_dm(channel: str) -> bool:
    """A direct message's id (`dm.` + 10 of [a-z0-9]); create_channel never makes a private `dm`."""
    return channel.startswith(DM_PREFIX)


def channel_key(workspace: str, channel: str) -> Key:
    """`channel` is the channel's id: its name if public, `name.<suffix>` if private (parley.ids), so a
    private channel's item never occupies the key a public channel of the same name would take.

    A direct message's item is `META` in its own messages partition, not in the workspace's: listing
    the workspace's channels never reads the DMs of everyone in it."""
    if is_dm(channel):
        return {"PK": channel_messages_pk(workspace, channel), "SK": "META"}
    return {"PK": workspace_pk(workspace), "SK": f"{CHANNEL_PREFIX}{channel}"}


def member_pk(workspace: str, user_id: str) -> str:
    """The partition of one user's memberships in a workspace."""
    return f"WS#{workspace}#USER#{user_id}"


def member_key(workspace: str, user_id: str, channel: str) -> Key:
    return {"PK": member_pk(workspace, user_id), "SK": f"{CHANNEL_PREFIX}{channel}"}


def member_of_pk(pk: str) -> tuple[str, str]:
    """(workspace, user id) of a membership's partition key: neither may hold a '#' (parley.names)."""
    _, workspace, _, user_id = pk.split("#", 3)
    return workspace, user_id


def workspace_of_pk(pk: str) -> str:
    """The workspace of a `WS#{workspace}...` partition key."""
    return pk.split("#", 2)[1]


def read_key(workspace: str, user_id: str, channel: str) -> Key:
    """A user's read mark in a channel: in the partition of the user's memberships, so `channels`
    reads memberships, marks and mention counts with one Query."""
    return {"PK": member_pk(workspace, user_id), "SK": f"{READ_PREFIX}{channel}"}


def mention_count_key(workspace: str, user_id: str, channel: str) -> Key:
    """How many times a user was mentioned in a channel (kept by the counters consumer)."""
    return {"PK": member_pk(workspace, user_id), "SK": f"{MENTIONS_PREFIX}{channel}"}


def creator_count_key(workspace: str, user_id: str) -> Key:
    """How many channels a user created in a workspace (the workspace's own count is on its item)."""
    return {"PK": member_pk(workspace, user_id), "SK": "QUOTA"}


def channel_messages_pk(workspace: str, channel: str) -> str:
    """The partition of a channel's messages and its head item."""
    return f"WS#{workspace}#CHAN#{channel}"


def head_key(workspace: str, channel: str) -> Key:
    return {"PK": channel_messages_pk(workspace, channel), "SK": "HEAD"}


def counter_key(workspace: str, channel: str) -> Key:
    """A channel's message count (kept by the counters consumer, off the write path)."""
    return {"PK": channel_messages_pk(workspace, channel), "SK": "COUNT"}


def message_sk(message_id: str) -> str:
    return f"{MESSAGE_PREFIX}{message_id}"


def message_key(workspace: str, channel: str, message_id: str) -> Key:
    return {"PK": channel_messages_pk(workspace, channel), "SK": message_sk(message_id)}


# Reactions live in the channel's message partition, sorted by message id, so a page of messages finds
# them with one range Query of each kind (parley.store.reactions). Their prefixes sort between `HEAD` and
# `MSG#` ("MR" < "MS"): no message Query (`begins_with MSG#`, `> MSG#{since}`) ever meets them.
# `#` never occurs in a user id (parley.names).
REACTIONS_PREFIX = "MRC#"  # a message's counts: one item per message that ever had a reaction
REACTED_PREFIX = "MRU#"  # one user's names on one message: MRU#{userId}#{messageId}
REACTION_COUNT_PREFIX = "c#"  # the counts item's attribute per name: `c#{name}`


def reactions_key(workspace: str, channel: str, message_id: str) -> Key:
    return {"PK": channel_messages_pk(workspace, channel), "SK": f"{REACTIONS_PREFIX}{message_id}"}


def reacted_prefix(user_id: str) -> str:
    return f"{REACTED_PREFIX}{user_id}#"


def reacted_key(workspace: str, channel: str, user_id: str, message_id: str) -> Key:
    return {"PK": channel_messages_pk(workspace, channel), "SK": f"{reacted_prefix(user_id)}{message_id}"}


def thread_key(workspace: str, channel: str, parent_id: str) -> str:
    """The `Threads` index partition of one thread's replies."""
    return f"WS#{workspace}#CHAN#{channel}#THREAD#{parent_id}"
