"""The store as the use cases see it: one Protocol per aggregate, so tests can hand in an in-memory store.

`parley.store.Store` implements all of them over DynamoDB; tests/support/memory_store.py in memory, and
tests/integration/test_store_contract.py keeps the two equal. Chat's other collaborators have their
ports next to their implementations (Notifier, PresenceTimers, Once, Clock).
"""

from __future__ import annotations

from typing import Any, Protocol

from parley.models import (
    Caller,
    Channel,
    Connection,
    DuePage,
    Message,
    MessagePage,
    PresencePage,
    ReactionChange,
    ReactionState,
    ReactionSummary,
    Subscriber,
)


class Subscribers(Protocol):
    """What fan-out reads: the live subscriptions of a channel."""

    def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]: ...


class Connections(Subscribers, Protocol):
    """Connections with their subscriptions, presence and typing signals."""

    def put_connection(self, caller: Caller, connected_at_ms: int, expires_at_s: int) -> None: ...

    def get_connection(self, connection_id: str) -> Connection | None: ...

    def touch_connection(self, connection_id: str, expires_at_s: int, *, min_step_s: int = 0) -> bool: ...

    def delete_connection(self, connection_id: str) -> None: ...

    def claim_connection_slot(
        self, caller: Caller, max_slots: int, now_s: int, expires_at_s: int
    ) -> bool: ...

    def release_connection_slot(self, workspace: str, user_id: str, connection_id: str) -> None: ...

    def user_connections(self, workspace: str, user_id: str, now_s: int) -> list[str]: ...

    def subscribe(
        self, caller: Caller, channel: str, expires_at_s: int, *, max_channels: int | None = None
    ) -> bool: ...

    def unsubscribe(self, connection_id: str, workspace: str, channel: str) -> bool: ...

    def is_subscribed(self, connection_id: str, workspace: str, channel: str, now_s: int) -> bool: ...

    def presence_remove(
        self, workspace: str, channel: str, user_id: str, connection_id: str, leave_at_ms: int
    ) -> bool: ...

    def finalize_leave(self, workspace: str, channel: str, user_id: str, now_ms: int) -> bool: ...

    def present_users(
        self, workspace: str, channel: str, now_s: int, *, limit: int, after: str | None = None
    ) -> PresencePage: ...

    def touch_typing(self, caller: Caller, channel: str, now_ms: int, window_ms: int) -> bool: ...


class Channels(Protocol):
    """Workspaces, channels and membership."""

    def workspace_exists(self, workspace: str) -> bool: ...

    def create_workspace(self, workspace: str, default_channels: list[str], now_ms: int) -> None: ...

    def get_channel(self, workspace: str, channel: str) -> Channel | None: ...

    def create_channel(
        self,
        channel: Channel,
        now_ms: int,
        *,
        max_per_workspace: int | None = None,
        max_per_creator: int | None = None,
    ) -> None: ...

    def is_member(self, workspace: str, user_id: str, channel: str) -> bool: ...

    def add_member(self, workspace: str, user_id: str, channel: str, now_ms: int) -> None: ...

    def invite_member(
        self, workspace: str, inviter: str, user_id: str, channel: str, now_ms: int, *, max_per_hour: int
    ) -> None: ...

    def remove_member(self, workspace: str, user_id: str, channel: str) -> bool: ...

    def list_channels(self, workspace: str) -> list[Channel]: ...

    def member_channels(self, workspace: str, user_id: str) -> set[str]: ...


class Messages(Protocol):
    """A channel's messages, appended in id order and read a page at a time."""

    def append_message(self, draft: Message) -> Message: ...

    def get_message(self, workspace: str, channel: str, message_id: str) -> Message | None: ...

    def recent_messages(self, workspace: str, channel: str, limit: int) -> MessagePage: ...

    def messages_before(self, workspace: str, channel: str, before: str, limit: int) -> MessagePage: ...

    def messages_after(self, workspace: str, channel: str, since: str, limit: int) -> MessagePage: ...


class MessageChanges(Protocol):
    """Edits and deletes (compare-and-set on a message's version) and a thread's replies."""

    def current_message(self, workspace: str, channel: str, message_id: str) -> Message | None: ...

    def replace_text(self, seen: Message, text: str, edited_at: str) -> Message | None: ...

    def tombstone(self, seen: Message, deleted_at: str) -> Message | None: ...

    def thread_replies(
        self, workspace: str, channel: str, parent_id: str, after: str | None, limit: int
    ) -> MessagePage: ...


class RateStates(Protocol):
    """The rate limiter's per-user, per-action state, compare-and-set."""

    def claim_rate_if_idle(
        self,
        workspace: str,
        user_id: str,
        now_ms: int,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> int | None: ...

    def rate_state(self, workspace: str, user_id: str, *, bucket: str = "message") -> int | None: ...

    def save_rate_state(
        self,
        workspace: str,
        user_id: str,
        old: int | None,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> bool: ...


class DueItems(Protocol):
    """What the sweeper must finish, one shard of the `Due` index at a time."""

    def due_shards(self) -> list[str]: ...

    def due_page(
        self, shard: str, now_ms: int, limit: int, after: dict[str, Any] | None = None
    ) -> DuePage: ...

    def connection_due(self, connection_id: str, now_ms: int) -> bool: ...


class Reactions(Protocol):
    """Reactions on messages: the state a `react` decides on, the change, a page's summaries."""

    def reaction_state(
        self, workspace: str, channel: str, message_id: str, user_id: str, *, consistent: bool = False
    ) -> ReactionState | None: ...

    def apply_reaction(
        self, change: ReactionChange, seen: ReactionState, *, max_distinct: int, max_mine: int
    ) -> bool: ...

    def reaction_summaries(
        self, workspace: str, channel: str, user_id: str, first_id: str, last_id: str
    ) -> dict[str, ReactionSummary]: ...


class ChatStore(Connections, Channels, Messages, MessageChanges, RateStates, DueItems, Reactions, Protocol):
    """Everything the chat use cases read and write."""
