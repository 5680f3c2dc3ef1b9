"""An in-memory store with the same behaviour as parley.store.Store, for fast tests of the use cases.

It implements parley.ports.ChatStore; tests/integration/test_store_contract.py runs the same
assertions against it and against the DynamoDB store under moto, so the two cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from parley.errors import Conflict, NotFound, QuotaExceeded
from parley.ids import message_id_ms, next_message_id
from parley.models import (
    Caller,
    Channel,
    Connection,
    DueItem,
    DuePage,
    Message,
    MessagePage,
    PresencePage,
    ReactionChange,
    ReactionState,
    ReactionSummary,
    Subscriber,
    User,
)
from parley.store import keys

ChannelKey = tuple[str, str]  # (workspace, channel)


@dataclass
class _Connection:
    caller: Caller
    expires_at_s: int
    channels: set[str] = field(default_factory=set)


@dataclass
class _Presence:
    user: User
    expires_at_s: int
    conns: set[str] = field(default_factory=set)
    leave_at_ms: int | None = None


@dataclass
class _Subscription:
    user_id: str
    expires_at_s: int


class MemoryStore:
    """Every port of parley.ports in dicts. Expired items stay readable where DynamoDB's would (TTL is
    lazy) and are filtered where the real store filters them."""

    def __init__(self) -> None:
        self.connections: dict[str, _Connection] = {}
        self.subscriptions: dict[ChannelKey, dict[str, _Subscription]] = {}
        self.presence: dict[ChannelKey, dict[str, _Presence]] = {}
        self.typing: dict[tuple[str, str, str], int] = {}  # (workspace, channel, user) -> at (ms)
        self.rates: dict[tuple[str, str, str], int] = {}
        self.workspaces: set[str] = set()
        self.channels: dict[ChannelKey, Channel] = {}
        self.members: dict[tuple[str, str], set[str]] = {}  # (workspace, user) -> channels
        self.messages: dict[ChannelKey, dict[str, Message]] = {}
        self.heads: dict[ChannelKey, str] = {}
        self.connection_writes = 0  # heartbeats that rewrote a connection's expiry
        # (workspace, user) -> slot -> (connection id, expires at s)
        self.slots: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
        self.channel_counts: dict[tuple[str, str], int] = {}  # (workspace, creator or "") -> count
        self.invite_counts: dict[tuple[str, str, int], int] = {}  # (workspace, inviter, hour) -> count
        # (workspace, channel, message id) -> (counts of the names in use, version)
        self.reactions: dict[tuple[str, str, str], tuple[dict[str, int], int]] = {}
        # (workspace, channel, message id, user id) -> the user's names on the message
        self.reacted: dict[tuple[str, str, str, str], set[str]] = {}
        self._lock = threading.Lock()

    # ---- connections ---------------------------------------------------------------------------

    def put_connection(self, caller: Caller, connected_at_ms: int, expires_at_s: int) -> None:
        self.connections[caller.connection_id] = _Connection(caller, expires_at_s)

    def get_connection(self, connection_id: str) -> Connection | None:
        found = self.connections.get(connection_id)
        if found is None:
            return None
        caller = found.caller
        return Connection(connection_id, caller.user, caller.workspace, frozenset(found.channels))

    def touch_connection(self, connection_id: str, expires_at_s: int, *, min_step_s: int = 0) -> bool:
        found = self.connections.get(connection_id)
        if found is None:
            return False
        if found.expires_at_s <= expires_at_s - min_step_s:
            found.expires_at_s = expires_at_s
            self.connection_writes += 1
        return True

    def delete_connection(self, connection_id: str) -> None:
        self.connections.pop(connection_id, None)

    def claim_connection_slot(self, caller: Caller, max_slots: int, now_s: int, expires_at_s: int) -> bool:
        with self._lock:
            held = self.slots.setdefault((caller.workspace, caller.user.id), {})
            if any(c == caller.connection_id for c, _ in held.values()):
                return True
            for slot in range(max_slots):
                if slot not in held or held[slot][1] <= now_s:
                    held[slot] = (caller.connection_id, expires_at_s)
                    return True
            return False

    def release_connection_slot(self, workspace: str, user_id: str, connection_id: str) -> None:
        with self._lock:
            held = self.slots.get((workspace, user_id), {})
            for slot in [n for n, (c, _) in held.items() if c == connection_id]:
                del held[slot]

    def user_connections(self, workspace: str, user_id: str, now_s: int) -> list[str]:
        held = self.slots.get((workspace, user_id), {})
        return [c for _, (c, e) in sorted(held.items()) if e > now_s]

    # ---- subscriptions and presence ------------------------------------------------------------

    def subscribe(
        self, caller: Caller, channel: str, expires_at_s: int, *, max_channels: int | None = None
    ) -> bool:
        with self._lock:
            connection = self.connections.get(caller.connection_id)
            if connection is None:
                return False
            full = max_channels is not None and len(connection.channels) >= max_channels
            if full and channel not in connection.channels:
                raise QuotaExceeded(f"a connection may join at most {max_channels} channels; leave one first")
            key = (caller.workspace, channel)
            connection.channels.add(channel)
            subs = self.subscriptions.setdefault(key, {})
            subs[caller.connection_id] = _Subscription(caller.user.id, expires_at_s)
            present = self.presence.setdefault(key, {})
            user = present.setdefault(caller.user.id, _Presence(caller.user, expires_at_s))
            user.user, user.expires_at_s, user.leave_at_ms = caller.user, expires_at_s, None
            user.conns.add(caller.connection_id)
            return True

    def unsubscribe(self, connection_id: str, workspace: str, channel: str) -> bool:
        old = self.subscriptions.get((workspace, channel), {}).pop(connection_id, None)
        connection = self.connections.get(connection_id)
        if connection is not None:
            connection.channels.discard(channel)
        return old is not None

    def is_subscribed(self, connection_id: str, workspace: str, channel: str, now_s: int) -> bool:
        sub = self.subscriptions.get((workspace, channel), {}).get(connection_id)
        return sub is not None and sub.expires_at_s > now_s

    def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]:
        subs = self.subscriptions.get((workspace, channel), {})
        return [
            Subscriber(connection_id, sub.user_id)
            for connection_id, sub in sorted(subs.items())
            if sub.expires_at_s > now_s
        ]

    def presence_remove(
        self, workspace: str, channel: str, user_id: str, connection_id: str, leave_at_ms: int
    ) -> bool:
        with self._lock:
            user = self.presence.get((workspace, channel), {}).get(user_id)
            if user is None:
                return False
            user.conns.discard(connection_id)
            if user.conns or user.leave_at_ms is not None:
                return False
            user.leave_at_ms = leave_at_ms
            user.expires_at_s = -(-leave_at_ms // 1000)
            return True

    def finalize_leave(self, workspace: str, channel: str, user_id: str, now_ms: int) -> bool:
        with self._lock:
            present = self.presence.get((workspace, channel), {})
            user = present.get(user_id)
            if user is None or user.conns or user.leave_at_ms is None or user.leave_at_ms > now_ms:
                return False
            del present[user_id]
            return True

    def present_users(
        self, workspace: str, channel: str, now_s: int, *, limit: int, after: str | None = None
    ) -> PresencePage:
        users = [
            p.user
            for user_id, p in sorted(self.presence.get((workspace, channel), {}).items())
            if p.expires_at_s > now_s and (after is None or user_id > after)
        ]
        return PresencePage(users[:limit], len(users) > limit)

    def touch_typing(self, caller: Caller, channel: str, now_ms: int, window_ms: int) -> bool:
        key = (caller.workspace, channel, caller.user.id)
        at = self.typing.get(key)
        if at is not None and at > now_ms - window_ms:
            return False
        self.typing[key] = now_ms
        return True

    # ---- workspaces, channels, membership ------------------------------------------------------

    def workspace_exists(self, workspace: str) -> bool:
        return workspace in self.workspaces

    def create_workspace(self, workspace: str, default_channels: list[str], now_ms: int) -> None:
        if workspace in self.workspaces or any((workspace, c) in self.channels for c in default_channels):
            return  # one transaction of conditional puts: all or nothing
        self.workspaces.add(workspace)
        for name in default_channels:
            self.channels[(workspace, name)] = Channel(workspace, name, False, "")

    def get_channel(self, workspace: str, channel: str) -> Channel | None:
        return self.channels.get((workspace, channel))

    def create_channel(
        self,
        channel: Channel,
        now_ms: int,
        *,
        max_per_workspace: int | None = None,
        max_per_creator: int | None = None,
    ) -> None:
        with self._lock:
            if (channel.workspace, channel.id) in self.channels:
                raise Conflict(f"channel '{channel.id}' already exists")
            counted = [((channel.workspace, ""), max_per_workspace, "the workspace")]
            counted.append(((channel.workspace, channel.created_by), max_per_creator, "you"))
            for key, limit, who in counted:
                if limit is not None and self.channel_counts.get(key, 0) >= limit:
                    raise QuotaExceeded(f"{who} may create at most {limit} channels")
            for key, limit, _ in counted:
                if limit is not None:
                    self.channel_counts[key] = self.channel_counts.get(key, 0) + 1
            self.channels[(channel.workspace, channel.id)] = channel
        self.add_member(channel.workspace, channel.created_by, channel.id, now_ms)

    def is_member(self, workspace: str, user_id: str, channel: str) -> bool:
        return channel in self.members.get((workspace, user_id), set())

    def add_member(self, workspace: str, user_id: str, channel: str, now_ms: int) -> None:
        self.members.setdefault((workspace, user_id), set()).add(channel)

    def invite_member(
        self, workspace: str, inviter: str, user_id: str, channel: str, now_ms: int, *, max_per_hour: int
    ) -> None:
        with self._lock:
            key = (workspace, inviter, now_ms // 3_600_000)
            if self.invite_counts.get(key, 0) >= max_per_hour:
                raise QuotaExceeded(
                    f"you may send at most {max_per_hour} invites an hour; try again next hour"
                )
            self.invite_counts[key] = self.invite_counts.get(key, 0) + 1
        self.add_member(workspace, user_id, channel, now_ms)

    def remove_member(self, workspace: str, user_id: str, channel: str) -> bool:
        channels = self.members.get((workspace, user_id), set())
        if channel not in channels:
            return False
        channels.discard(channel)
        return True

    def list_channels(self, workspace: str) -> list[Channel]:
        return [c for (w, _), c in sorted(self.channels.items()) if w == workspace]

    def member_channels(self, workspace: str, user_id: str) -> set[str]:
        return set(self.members.get((workspace, user_id), set()))

    # ---- messages ------------------------------------------------------------------------------

    def append_message(self, draft: Message) -> Message:
        key = (draft.workspace, draft.channel)
        with self._lock:
            message = draft
            last = self.heads.get(key)
            if last is not None and last >= draft.id:
                new_id = next_message_id(max(last, draft.id), message_id_ms(draft.id))
                message = draft.renumbered(new_id)
            if message.thread_id is not None:
                parent = self.messages.get(key, {}).get(message.thread_id)
                if parent is None or parent.deleted or parent.thread_id is not None:
                    raise NotFound(f"thread '{message.thread_id}' is not a live message")
                self.messages[key][parent.id] = replace(
                    parent,
                    reply_count=parent.reply_count + 1,
                    last_reply_at=message.ts,
                    thread_version=parent.thread_version + 1,
                )
            self.heads[key] = message.id
            self.messages.setdefault(key, {})[message.id] = message
            return message

    def current_message(self, workspace: str, channel: str, message_id: str) -> Message | None:
        return self.get_message(workspace, channel, message_id)

    def replace_text(self, seen: Message, text: str, edited_at: str) -> Message | None:
        with self._lock:
            stored = self.messages.get((seen.workspace, seen.channel), {}).get(seen.id)
            if stored is None or stored.deleted or stored.version != seen.version:
                return None
            # the stored one, not `seen`: its thread summary may have moved on since the read
            written = replace(stored, text=text, edited_at=edited_at, version=stored.version + 1)
            self.messages[(seen.workspace, seen.channel)][seen.id] = written
            return written

    def tombstone(self, seen: Message, deleted_at: str) -> Message | None:
        key = (seen.workspace, seen.channel)
        with self._lock:
            stored = self.messages.get(key, {}).get(seen.id)
            if stored is None or stored.deleted or stored.version != seen.version:
                return None
            written = replace(stored, text="", deleted_at=deleted_at, version=stored.version + 1)
            self.messages[key][seen.id] = written
            parent = self.messages[key].get(seen.thread_id or "")
            if parent is not None:
                self.messages[key][parent.id] = replace(
                    parent, reply_count=parent.reply_count - 1, thread_version=parent.thread_version + 1
                )
            return written

    def thread_replies(
        self, workspace: str, channel: str, parent_id: str, after: str | None, limit: int
    ) -> MessagePage:
        replies = sorted(
            (
                m
                for m in self.messages.get((workspace, channel), {}).values()
                if m.thread_id == parent_id and (after is None or m.id > after)
            ),
            key=lambda m: m.id,
        )
        return MessagePage(replies[:limit], len(replies) > limit)

    def get_message(self, workspace: str, channel: str, message_id: str) -> Message | None:
        return self.messages.get((workspace, channel), {}).get(message_id)

    def recent_messages(self, workspace: str, channel: str, limit: int) -> MessagePage:
        return self._newest(workspace, channel, limit, lambda _: True)

    def messages_before(self, workspace: str, channel: str, before: str, limit: int) -> MessagePage:
        return self._newest(workspace, channel, limit, lambda i: int(i) < int(before))

    def messages_after(self, workspace: str, channel: str, since: str, limit: int) -> MessagePage:
        return self._newest(workspace, channel, limit, lambda i: i > since)

    # ---- reactions -----------------------------------------------------------------------------

    def reaction_state(
        self, workspace: str, channel: str, message_id: str, user_id: str, *, consistent: bool = False
    ) -> ReactionState | None:
        stored = self.get_message(workspace, channel, message_id)
        if stored is None or stored.deleted:
            return None
        counts, version = self.reactions.get((workspace, channel, message_id), ({}, 0))
        mine = frozenset(self.reacted.get((workspace, channel, message_id, user_id), set()))
        return ReactionState(dict(counts), version, mine)

    def apply_reaction(
        self, change: ReactionChange, seen: ReactionState, *, max_distinct: int, max_mine: int
    ) -> bool:
        """The DynamoDB store's conditions, checked the same way: False writes nothing."""
        message = (change.workspace, change.channel, change.message_id)
        with self._lock:
            stored = self.get_message(*message)
            if change.added and (stored is None or stored.deleted):
                return False
            counts, version = self.reactions.get(message, ({}, 0))
            mine = self.reacted.get((*message, change.user.id), set())
            count = counts.get(change.name, 0)
            seen_count = seen.counts.get(change.name, 0)
            if change.added:
                fits_mine = change.name not in mine and len(mine) < max_mine
                fits_counts = count == 0 and len(counts) < max_distinct if seen_count == 0 else count >= 1
            else:
                fits_mine = change.name in mine and (len(mine) == 1 or seen.mine != {change.name})
                fits_counts = count == 1 if seen_count <= 1 else count > 1
            if not (fits_mine and fits_counts):
                return False
            counts = dict(counts)
            if change.added:
                counts[change.name] = count + 1
                self.reacted[(*message, change.user.id)] = mine | {change.name}
            else:
                if count == 1:
                    del counts[change.name]
                else:
                    counts[change.name] = count - 1
                if mine == {change.name}:
                    del self.reacted[(*message, change.user.id)]
                else:
                    self.reacted[(*message, change.user.id)] = mine - {change.name}
            self.reactions[message] = (counts, version + 1)
            return True

    def reaction_summaries(
        self, workspace: str, channel: str, user_id: str, first_id: str, last_id: str
    ) -> dict[str, ReactionSummary]:
        return {
            message_id: ReactionSummary(
                tuple(sorted(counts.items())),
                frozenset(self.reacted.get((w, c, message_id, user_id), set())) & counts.keys(),
                version,
            )
            for (w, c, message_id), (counts, version) in self.reactions.items()
            if (w, c) == (workspace, channel) and first_id <= message_id <= last_id
        }

    def _newest(self, workspace: str, channel: str, limit: int, wanted: Callable[[str], bool]) -> MessagePage:
        ids = sorted(i for i in self.messages.get((workspace, channel), {}) if wanted(i))
        page = [self.messages[(workspace, channel)][i] for i in ids[-limit:]] if limit > 0 else []
        return MessagePage(page, len(ids) > limit)

    # ---- rate state ----------------------------------------------------------------------------

    def claim_rate_if_idle(
        self,
        workspace: str,
        user_id: str,
        now_ms: int,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> int | None:
        with self._lock:
            stored = self.rates.get((workspace, user_id, bucket))
            if stored is not None and stored > now_ms:
                return stored
            self.rates[(workspace, user_id, bucket)] = new
            return None

    def rate_state(self, workspace: str, user_id: str, *, bucket: str = "message") -> int | None:
        return self.rates.get((workspace, user_id, bucket))

    def save_rate_state(
        self,
        workspace: str,
        user_id: str,
        old: int | None,
        new: int,
        expires_at_s: int,
        *,
        bucket: str = "message",
    ) -> bool:
        with self._lock:
            if self.rates.get((workspace, user_id, bucket)) != old:
                return False
            self.rates[(workspace, user_id, bucket)] = new
            return True

    # ---- the sweeper's work --------------------------------------------------------------------

    def due_shards(self) -> list[str]:
        return keys.all_due_shards()

    def due_page(self, shard: str, now_ms: int, limit: int, after: dict[str, Any] | None = None) -> DuePage:
        start = (after["dueAt"], after["key"]) if after is not None else None
        due = [entry for entry in self._due_in(shard, now_ms) if start is None or entry[:2] > start]
        page = due[:limit]
        more = len(due) > limit and page
        return DuePage(
            [item for _, _, item in page], {"dueAt": page[-1][0], "key": page[-1][1]} if more else None
        )

    def connection_due(self, connection_id: str, now_ms: int) -> bool:
        found = self.connections.get(connection_id)
        return found is not None and found.expires_at_s * 1000 <= now_ms

    def _due_in(self, shard: str, now_ms: int) -> list[tuple[int, str, DueItem]]:
        """(dueAt, key, item) of one shard's due items, in index order."""
        found: list[tuple[int, str, DueItem]] = []
        with self._lock:
            if keys.due_kind(shard) == keys.CONNECTION_DUE:
                for connection_id, c in list(self.connections.items()):
                    if c.expires_at_s * 1000 <= now_ms and keys.connection_due_shard(connection_id) == shard:
                        found.append(
                            (
                                c.expires_at_s * 1000,
                                connection_id,
                                DueItem("connection", connection_id=connection_id),
                            )
                        )
            else:
                for (w, ch), present in list(self.presence.items()):
                    for user_id, p in list(present.items()):
                        if (
                            p.leave_at_ms is not None
                            and p.leave_at_ms <= now_ms
                            and keys.presence_due_shard(w, ch, user_id) == shard
                        ):
                            item = DueItem("presence", workspace=w, channel=ch, user_id=user_id)
                            found.append((p.leave_at_ms, f"{w}#{ch}#{user_id}", item))
        return sorted(found, key=lambda entry: entry[:2])
