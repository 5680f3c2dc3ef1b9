"""Conversations: direct messages, read marks and the `channels` list with unread and mention counts.

Written against ports, like parley.chat (whose rate limiter and visibility rule it shares): the
directory of workspace users, DMs, read marks and the counters the counters consumer keeps.
"""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools import Logger

from parley import protocol
from parley.chat import Chat, Reply
from parley.counters import CounterStore
from parley.errors import BadRequest, Conflict, NotFound
from parley.ids import DM_NAME, dm_channel_id
from parley.mentions import Directory
from parley.models import Caller, Channel, ChannelListing, Count, ReadMark, ReadState, User
from parley.notify import PostOutcome
from parley.store.keys import is_dm

logger = Logger(child=True)


class ConversationStates(Directory, CounterStore, Protocol):
    """What conversations read and write besides Chat's store (parley.store.conversations)."""

    def users_of(self, workspace: str, user_ids: list[str]) -> dict[str, User]: ...

    def open_dm(self, channel: Channel, now_ms: int) -> tuple[Channel, bool]: ...

    def channels_by_id(self, workspace: str, channel_ids: list[str]) -> dict[str, Channel]: ...

    def read_state(self, workspace: str, user_id: str) -> ReadState: ...

    def channel_counts(self, workspace: str, channel_ids: list[str]) -> dict[str, Count]: ...

    def counts_for(self, workspace: str, user_id: str, channel: str) -> tuple[Count, Count]: ...

    def count_between(
        self, workspace: str, channel: str, after: str, upto: str, user_id: str
    ) -> tuple[int, int]: ...

    def get_read_mark(self, workspace: str, user_id: str, channel: str) -> ReadMark | None: ...

    def save_read_mark(
        self, workspace: str, user_id: str, channel: str, mark: ReadMark, now_ms: int
    ) -> bool: ...


class Conversations:
    def __init__(self, *, chat: Chat, store: ConversationStates) -> None:
        self.chat = chat
        self.store = store

    # ---- direct messages -----------------------------------------------------------------------

    def open_dm(self, caller: Caller, frame: protocol.OpenDmFrame) -> Reply:
        """The one DM of the caller and `frame.users`: created on first open (its members made
        members), found on every later one, whoever opens it and however the users are ordered."""
        others = [u for u in dict.fromkeys(frame.users) if u != caller.user.id]
        if not others:
            raise BadRequest("users: name at least one user besides yourself")
        found = self.store.users_of(caller.workspace, others)
        missing = [u for u in others if u not in found]
        if missing:
            raise NotFound(f"no user '{missing[0]}' in this workspace")
        members = tuple(sorted([caller.user, *found.values()], key=lambda u: u.id))
        channel_id = dm_channel_id(caller.workspace, [u.id for u in members])
        wanted = Channel(caller.workspace, channel_id, True, "", "creator", DM_NAME, members)
        existing = self.chat.store.get_channel(caller.workspace, channel_id)
        self.chat._take_rate(caller.workspace, caller.user.id, "open_dm")
        if existing is None:
            existing, _ = self.store.open_dm(wanted, self.chat.clock.now_ms())
        elif not self.chat.store.is_member(caller.workspace, caller.user.id, channel_id):
            # the caller left it (leave with membership): opening it again makes them a member again
            self.chat.store.add_member(caller.workspace, caller.user.id, channel_id, self.chat.clock.now_ms())
        if [u.id for u in existing.members] != [u.id for u in members]:
            # 51 bits of a hash met another set of members: refuse rather than mix two conversations
            raise Conflict("this direct message cannot be opened; try a different set of users")
        return Reply(protocol.dm_opened(existing))

    # ---- read state ----------------------------------------------------------------------------

    def mark_read(self, caller: Caller, frame: protocol.MarkReadFrame) -> Reply:
        """Move the caller's read mark forward (an older or equal id changes nothing and writes
        nothing) and tell the caller's other connections."""
        workspace, user_id = caller.workspace, caller.user.id
        channel = self.chat._visible_channel(caller, frame.channel)
        if self.chat.store.get_message(workspace, channel.id, frame.message_id) is None:
            raise NotFound(f"no message '{frame.message_id}' in '{channel.id}'")
        current = self.store.get_read_mark(workspace, user_id, channel.id)
        if current is not None and current.message_id >= frame.message_id:
            return Reply(self._read_frame(caller, channel.id, current))
        self.chat._take_rate(workspace, user_id, "mark_read")
        mark = self._mark_at(caller, channel.id, frame.message_id)
        if not self.store.save_read_mark(workspace, user_id, channel.id, mark, self.chat.clock.now_ms()):
            # another connection moved it at least as far meanwhile: answer what is stored
            stored = self.store.get_read_mark(workspace, user_id, channel.id) or mark
            return Reply(self._read_frame(caller, channel.id, stored))
        unread, mentions = self._left_after(caller, channel.id, mark)
        event = protocol.read_event(channel.id, mark.message_id, unread, mentions)
        self._tell_other_connections(caller, protocol.encode(event))
        return Reply(protocol.marked_read(channel.id, mark.message_id, unread, mentions))

    def _mark_at(self, caller: Caller, channel: str, message_id: str) -> ReadMark:
        """The counts as of `message_id`: the counters now, less what they counted after it, or plus
        what they have not counted yet up to it (a COUNT Query of the messages in between, only when
        the mark is not at the newest counted one).

        The counters run a stream batch behind the table (about a second), so a user who reads the
        newest message at once reads one they have not counted yet: it is part of the mark, or the
        counter would make it unread as soon as it counts it. (A message the counter skips, its
        record arriving after a newer one's, is then one short until the next mark, where leaving it
        out would make every quick reader one over.)"""
        count, mentioned = self.store.counts_for(caller.workspace, caller.user.id, channel)
        if message_id == count.last_id:
            return ReadMark(message_id, count.n, mentioned.n)
        if message_id > count.last_id:  # "" (nothing counted yet) is before every id
            ahead, ahead_mentions = self.store.count_between(
                caller.workspace, channel, count.last_id or "0", message_id, caller.user.id
            )
            if mentioned.last_id > count.last_id:
                # a batch's mentions are counted before its channel count: some of these already are
                ahead_mentions = (
                    self.store.count_between(
                        caller.workspace, channel, mentioned.last_id, message_id, caller.user.id
                    )[1]
                    if message_id > mentioned.last_id
                    else 0
                )
            return ReadMark(message_id, count.n + ahead, mentioned.n + ahead_mentions)
        later, later_mentions = self.store.count_between(
            caller.workspace, channel, message_id, count.last_id, caller.user.id
        )
        return ReadMark(message_id, max(0, count.n - later), max(0, mentioned.n - later_mentions))

    def _left_after(self, caller: Caller, channel: str, mark: ReadMark) -> tuple[int, int]:
        """(unread, mentions) after `mark`, by the counters now."""
        count, mentioned = self.store.counts_for(caller.workspace, caller.user.id, channel)
        return max(0, count.n - mark.n), max(0, mentioned.n - mark.mentions)

    def _read_frame(self, caller: Caller, channel: str, mark: ReadMark) -> dict[str, object]:
        unread, mentions = self._left_after(caller, channel, mark)
        return protocol.marked_read(channel, mark.message_id, unread, mentions)

    def _tell_other_connections(self, caller: Caller, data: str) -> None:
        """Best effort: a connection that misses it reads the counts with `channels` on reconnect."""
        now_s = self.chat.clock.now_ms() // 1000
        for connection_id in self.chat.store.user_connections(caller.workspace, caller.user.id, now_s):
            if connection_id == caller.connection_id:
                continue
            try:
                outcome = self.chat.notifier.post(connection_id, data)
            except Exception:
                logger.warning("read event not posted", extra={"other_connection": connection_id})
                continue
            if outcome is not PostOutcome.DELIVERED:
                logger.info("read event not delivered", extra={"outcome": outcome.value})

    # ---- the channel list ----------------------------------------------------------------------

    def list_channels(self, caller: Caller, frame: protocol.ChannelsFrame) -> Reply:
        """The visible channels after `after`, in id order, the caller's DMs among them (`dm: true`),
        each the caller is a member of with `unread` and `mentions`: one Query of the workspace's
        channels, one of the caller's partition (memberships, read marks, mention counts), and one
        BatchGetItem per 100 of the caller's DMs and of their channels' counters. No history is read."""
        chat = self.chat
        chat._take_rate(caller.workspace, caller.user.id, "channels")
        state = self.store.read_state(caller.workspace, caller.user.id)
        dms = self.store.channels_by_id(caller.workspace, sorted(c for c in state.memberships if is_dm(c)))
        channels = [
            c
            for c in chat.store.list_channels(caller.workspace)
            if not c.private or c.id in state.memberships
        ]
        shown = sorted(
            (c for c in [*channels, *dms.values()] if frame.after is None or c.id > frame.after),
            key=lambda c: c.id,
        )
        mine = [c.id for c in shown if c.id in state.memberships]
        counts = self.store.channel_counts(caller.workspace, mine) if mine else {}
        listings = []
        for channel in shown:
            if channel.id not in state.memberships:
                listings.append(ChannelListing(channel, False))
                continue
            mark = state.marks.get(channel.id, ReadMark("", 0, 0))
            unread = max(0, counts.get(channel.id, Count()).n - mark.n)
            mentions = max(0, state.mentions.get(channel.id, 0) - mark.mentions)
            listings.append(ChannelListing(channel, True, unread, mentions))
        return Reply(protocol.channels(listings))
