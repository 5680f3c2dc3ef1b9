"""Domain entities: who is calling, channels, messages, connections. No I/O and no wire format here."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from parley.clock import iso_ms
from parley.ids import message_id_ms


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity of a connection, as the authorizer established it. Never taken from a frame body."""

    connection_id: str
    user: User
    workspace: str
    token_expires_at: int  # epoch seconds
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel is addressed by `id`; `name` is what people see. A public channel's id is its name; a
    private one's is `name.<suffix>` (parley.ids), so private names never collide with anything."""

    workspace: str
    id: str
    private: bool
    created_by: str
    # who may invite: "members" (any member, the default) or "creator" (the creator only)
    invite_policy: str = "members"
    name: str = ""  # empty: the id (public channels, and private ones created before ids had a suffix)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)


@dataclass(frozen=True, slots=True)
class ChannelListing:
    channel: Channel
    member: bool


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    workspace: str
    channel: str
    ts: str  # ISO-8601 UTC with milliseconds
    user: User
    text: str
    client_msg_id: str | None = None
    thread_id: str | None = None
    # the app (parley.apps) that posted it through the publish function; None for a user's message
    app: str | None = None

    def renumbered(self, message_id: str) -> Message:
        """The same message under another id (the id was taken), its timestamp the new id's."""
        return replace(self, id=message_id, ts=iso_ms(message_id_ms(message_id)))


@dataclass(frozen=True, slots=True)
class Connection:
    connection_id: str
    user: User
    workspace: str
    channels: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One connection subscribed to a channel, as the fan-out needs it."""

    connection_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    has_more: bool


@dataclass(frozen=True, slots=True)
class PresencePage:
    """Present users in id order; has_more when at least one more present user follows the last."""

    users: list[User]
    has_more: bool


@dataclass(frozen=True, slots=True)
class DueItem:
    """Something the sweeper must finish: a stale connection or an overdue presence leave."""

    kind: str  # "connection" | "presence"
    connection_id: str = ""
    workspace: str = ""
    channel: str = ""
    user_id: str = ""


@dataclass(frozen=True, slots=True)
class DuePage:
    """One page of one `Due` shard, oldest first; `after` continues it (None: the shard is done)."""

    items: list[DueItem]
    after: dict[str, Any] | None = None
