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
    # a workspace admin (the token's `parley:admin` claim, verified by the authorizer): may delete any message
    admin: bool = False


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
    # a direct message: its members (fixed by its id, parley.ids.dm_channel_id), in id order
    members: tuple[User, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.id)

    @property
    def dm(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True, slots=True)
class ChannelListing:
    channel: Channel
    member: bool
    # the caller's read state, for channels the caller is a member of (None: not given)
    unread: int | None = None
    mentions: int | None = None


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
    # the reactions as one reader sees them (history, join); None: not read, or none ever (parley.reacting)
    reactions: ReactionSummary | None = None
    # Every edit and the delete add one to `version`: the order of a message's own changes, by which
    # clients drop a stale or repeated `message_updated`/`message_deleted` (parley.message_changes).
    version: int = 0
    edited_at: str | None = None
    deleted_at: str | None = None  # a tombstone: its text is gone (empty here)
    # On a thread's parent: its replies (deleted ones not counted), the newest reply's time, and the
    # order of these two's changes (`thread_updated`), kept apart from `version` so replies never make
    # an edit of the parent conflict.
    reply_count: int = 0
    last_reply_at: str | None = None
    thread_version: int = 0

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    # the app (parley.apps) that posted it through the publish function; None for a user's message
    app: str | None = None
    # ids of workspace users the text mentions (`@user`, parley.mentions), in order of first mention
    mentions: tuple[str, ...] = ()

    def renumbered(self, message_id: str) -> Message:
        """The same message under another id (the id was taken), its timestamp the new id's."""
        return replace(self, id=message_id, ts=iso_ms(message_id_ms(message_id)))


@dataclass(frozen=True, slots=True)
class ReactionSummary:
    """A message's reactions for one reader: each name's count (names in code point order, counts > 0),
    the names the reader used, and the message's reaction version (every change adds one)."""

    counts: tuple[tuple[str, int], ...]
    mine: frozenset[str]
    version: int


@dataclass(frozen=True, slots=True)
class ReactionState:
    """What a `react` decides on: a message's reaction counts, how many distinct names it has, its
    version, and the names the reacting user already used on it."""

    counts: dict[str, int]
    version: int
    mine: frozenset[str]


@dataclass(frozen=True, slots=True)
class ReactionChange:
    """One user adding (or removing) one reaction name on one message."""

    workspace: str
    channel: str
    message_id: str
    user: User
    name: str
    added: bool


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


@dataclass(frozen=True, slots=True)
class Count:
    """A counter kept by the counters consumer: how many it counted, and the highest id among them."""

    n: int = 0
    last_id: str = ""


@dataclass(frozen=True, slots=True)
class ReadMark:
    """A user's read mark in a channel: the last message read, and the channel's message count and the
    user's mention count there as of that message (so unread = count now - `n`)."""

    message_id: str
    n: int
    mentions: int


@dataclass(frozen=True, slots=True)
class ReadState:
    """What `channels` needs of one user, read with one Query of the user's partition."""

    memberships: set[str] = field(default_factory=set)
    marks: dict[str, ReadMark] = field(default_factory=dict)
    mentions: dict[str, int] = field(default_factory=dict)
