"""Parley's use cases: what each route does, written against injected store, notifier, timers and clock."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from parley import protocol, reacting
from parley.clock import Clock, iso_ms
from parley.config import Settings
from parley.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    NotJoined,
    QuotaExceeded,
    RateLimited,
    StoreError,
    TokenExpired,
)
from parley.idempotency import Once, PostCommand, Posted
from parley.ids import DM_NAME, message_id_for, message_id_ms, private_channel_id
from parley.mentions import Directory, resolve
from parley.models import Caller, Channel, ChannelListing, DueItem, Message, User
from parley.notify import Notifier
from parley.ports import ChatStore
from parley.ratelimit import decide
from parley.timers import PresenceTimers

logger = Logger(child=True)

DEFAULT_CHANNELS = ["general", "random"]
TYPING_WINDOW_MS = 2000
RATE_ATTEMPTS = 3
PRIVATE_ID_ATTEMPTS = 3  # fresh ids drawn for a private channel before a collision is a conflict
# A heartbeat rewrites the connection's dueAt only when that moves it 2 minutes or more: the stored
# one is then at most 2 minutes early, so a connection heartbeating at least every 8 minutes (the web
# client: every 4 to 5) is never due, within the 10-minute heartbeat timeout.
HEARTBEAT_WRITE_STEP_S = 120
SWEEP_WORKERS = 8  # shards swept at once; under botocore's 10 pooled connections
SWEEP_PAGE = 100


def _rate_expiry(tat_ms: int) -> int:
    """The limiter state is worth keeping for a minute past its theoretical arrival time, then TTL."""
    return tat_ms // 1000 + 60


def _message_of(command: PostCommand, message_id: str, ts: str, mentions: tuple[str, ...] = ()) -> Message:
    return Message(
        id=message_id,
        workspace=command.workspace,
        channel=command.channel,
        ts=ts,
        user=User(command.user_id, command.user_name),
        text=command.text,
        client_msg_id=command.client_msg_id,
        thread_id=command.thread_id,
        app=command.app,
        mentions=mentions,
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """What a route answers its caller: a frame, or nothing (typing)."""

    frame: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did; `finished` is False when the deadline (or an error) left work for the next."""

    stale: int = 0
    leaves: int = 0
    finished: bool = True
    errors: int = 0

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(
            self.stale + other.stale,
            self.leaves + other.leaves,
            self.finished and other.finished,
            self.errors + other.errors,
        )


class Chat:
    def __init__(
        self,
        *,
        store: ChatStore,
        notifier: Notifier,
        timers: PresenceTimers,
        once: Once,
        clock: Clock,
        settings: Settings,
        directory: Directory | None = None,
    ) -> None:
        self.store = store
        self.directory = directory  # the workspace's users, for mentions (None: mentions are not parsed)
        self.notifier = notifier
        self.timers = timers
        self.once = once
        self.clock = clock
        self.settings = settings

    # ---- lifecycle -----------------------------------------------------------------------------

    def connect(self, caller: Caller, connected_at_ms: int) -> None:
        now = self.clock.now_ms()
        if not self.store.workspace_exists(caller.workspace):
            self.store.create_workspace(caller.workspace, DEFAULT_CHANNELS, now)
        limit = self.settings.max_connections_per_user
        # a slot outlives no connection: none lasts longer than max_connection_seconds (2 h on AWS)
        slot_expiry = now // 1000 + self.settings.max_connection_seconds
        if not self.store.claim_connection_slot(caller, limit, now // 1000, slot_expiry):
            raise QuotaExceeded(f"at most {limit} connections per user; close one first")
        self.store.put_connection(caller, connected_at_ms, self._connection_expiry_s(now))

    def disconnect(self, connection_id: str) -> None:
        """Forget a connection and everything it held. Safe to run twice (sweeper, fan-out, $disconnect)."""
        connection = self.store.get_connection(connection_id)
        if connection is None:
            return
        for channel in sorted(connection.channels):
            self._unsubscribe(connection_id, connection.workspace, connection.user.id, channel)
        self.store.release_connection_slot(connection.workspace, connection.user.id, connection_id)
        self.store.delete_connection(connection_id)

    def forget_gone(self, connection_id: str, subscriptions: list[tuple[str, str, str]]) -> None:
        """A post answered GoneException: forget that connection (never the sender's), including
        subscriptions its connection item no longer lists (the item may have expired or be half-deleted).

        The connection is also closed: should it in fact be alive (a 410 that was not true), its client
        learns it was dropped and re-joins with `since`, instead of staying open but subscribed to nothing.
        """
        self._close_quietly(connection_id)
        self.disconnect(connection_id)
        for workspace, channel, user_id in subscriptions:
            self._unsubscribe(connection_id, workspace, user_id, channel)

    def check_token(self, caller: Caller) -> None:
        if caller.token_expires_at * 1000 <= self.clock.now_ms():
            raise TokenExpired("your token has expired; reconnect with a new one")

    def heartbeat(self, caller: Caller) -> Reply:
        self._take_rate(caller.workspace, caller.user.id, "heartbeat")
        now = self.clock.now_ms()
        self.store.touch_connection(
            caller.connection_id, self._connection_expiry_s(now), min_step_s=HEARTBEAT_WRITE_STEP_S
        )
        return Reply(protocol.heartbeat(iso_ms(now)))

    # ---- channels ------------------------------------------------------------------------------

    def create_channel(self, caller: Caller, frame: protocol.CreateChannelFrame) -> Reply:
        """A public channel's id is its name, so it conflicts only with a public channel (which everyone
        sees); a private one gets a fresh `name.<suffix>` id and never conflicts. Either way the answer
        tells nothing about private channels the caller cannot see."""
        if frame.private:
            return self._create_private_channel(caller, frame)
        channel = Channel(caller.workspace, frame.name, False, caller.user.id, frame.invite)
        if self.store.get_channel(caller.workspace, channel.id) is not None:
            # read first, so that a name taken writes nothing (not even the rate limiter's state)
            raise Conflict(f"channel '{channel.id}' already exists")
        self._take_rate(caller.workspace, caller.user.id, "create_channel")
        self._store_channel(channel)
        return Reply(protocol.channel_created(channel))

    def _create_private_channel(self, caller: Caller, frame: protocol.CreateChannelFrame) -> Reply:
        if frame.name == DM_NAME:
            # `dm.<suffix>` ids are direct messages' (parley.conversations)
            raise BadRequest("name: 'dm' is reserved for direct messages; use open_dm")
        self._take_rate(caller.workspace, caller.user.id, "create_channel")
        for attempt in range(PRIVATE_ID_ATTEMPTS):
            channel_id = private_channel_id(frame.name)
            channel = Channel(caller.workspace, channel_id, True, caller.user.id, frame.invite, frame.name)
            try:
                self._store_channel(channel)
            except Conflict:
                # 51 random bits met an existing id: draw again (the cancelled transaction wrote nothing)
                if attempt + 1 == PRIVATE_ID_ATTEMPTS:
                    raise
                continue
            return Reply(protocol.channel_created(channel))
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_channel(self, channel: Channel) -> None:
        self.store.create_channel(
            channel,
            self.clock.now_ms(),
            max_per_workspace=self.settings.max_channels_per_workspace,
            max_per_creator=self.settings.max_channels_per_creator,
        )

    def list_channels(self, caller: Caller, frame: protocol.ChannelsFrame) -> Reply:
        """The visible channels after `after`, in id order (a private channel's id is its name and a
        suffix, so this is name order too, near enough); the reply is one page of them."""
        self._take_rate(caller.workspace, caller.user.id, "channels")
        memberships = self.store.member_channels(caller.workspace, caller.user.id)
        listings = [
            ChannelListing(channel, channel.id in memberships)
            for channel in self.store.list_channels(caller.workspace)
            if (not channel.private or channel.id in memberships)
            and (frame.after is None or channel.id > frame.after)
        ]
        return Reply(protocol.channels(listings))

    def invite(self, caller: Caller, frame: protocol.InviteFrame) -> Reply:
        """Make `frame.user` a member: the inviter must be a member, and the creator when the channel's
        policy is `creator`; counted against the inviter's invites of the hour."""
        channel = self._visible_channel(caller, frame.channel)
        if channel.dm:
            raise Forbidden("a direct message's members are fixed; open_dm with the users you want")
        if channel.invite_policy == "creator" and caller.user.id != channel.created_by:
            raise Forbidden(f"only the creator of '{channel.id}' may invite to it")
        if not channel.private and not self.store.is_member(caller.workspace, caller.user.id, channel.id):
            raise Forbidden(f"join '{channel.id}' before inviting to it")
        self._take_rate(caller.workspace, caller.user.id, "invite")
        self.store.invite_member(
            caller.workspace,
            caller.user.id,
            frame.user,
            channel.id,
            self.clock.now_ms(),
            max_per_hour=self.settings.max_invites_per_hour,
        )
        return Reply(protocol.invited(frame.channel, frame.user))

    def join(self, caller: Caller, frame: protocol.JoinFrame) -> Reply:
        channel = self._visible_channel(caller, frame.channel)
        self._take_rate(caller.workspace, caller.user.id, "join")
        now = self.clock.now_ms()
        # Subscriptions and presence are cleaned up by leave/disconnect/sweeper; their TTL is only the
        # backstop, so it must outlast any connection (2 h on AWS), not just one heartbeat period.
        backstop = now // 1000 + self.settings.max_connection_seconds + 600
        most = self.settings.max_channels_per_connection
        if not self.store.subscribe(caller, channel.id, backstop, max_channels=most):
            # We had forgotten this connection (a 410 or a missed heartbeat), yet it is talking to us:
            # it is alive after all, so register it again rather than fail the join.
            self.store.put_connection(caller, now, self._connection_expiry_s(now))
            self.store.subscribe(caller, channel.id, backstop, max_channels=most)
        if not channel.private and not self.store.is_member(caller.workspace, caller.user.id, channel.id):
            self.store.add_member(caller.workspace, caller.user.id, channel.id, now)
        if frame.since is not None:
            page = self.store.messages_after(caller.workspace, channel.id, frame.since, protocol.RECOVER_MAX)
            recovered = not page.has_more
            before = self._just_before(caller.workspace, channel.id, frame.since)
            # a page cut short leaves a gap after `before`: each run of ids gets its own reactions read
            runs = [before, page.messages] if page.has_more else [before + page.messages]
            messages = [m for run in runs for m in self._with_reactions(caller, channel.id, run)]
        else:
            page = self.store.recent_messages(caller.workspace, channel.id, protocol.JOIN_RECENT)
            recovered = True
            messages = self._with_reactions(caller, channel.id, page.messages)
        present = self.store.present_users(
            caller.workspace, channel.id, now // 1000, limit=protocol.JOIN_PRESENCE_MAX
        )
        users = present.users
        if all(u.id != caller.user.id for u in users):
            # The Query may not see the joiner's presence yet (it is eventually consistent), or list it
            # beyond the first page. The joiner goes first, so the last user listed stays the cursor
            # a client pages on from with `presence`.
            users = [caller.user, *users]
        return Reply(
            protocol.joined(
                channel.id,
                messages,
                recovered,
                users,
                presence_more=present.has_more,
                recovering=frame.since is not None,
            )
        )

    def _just_before(self, workspace: str, channel: str, since: str) -> list[Message]:
        """The few messages just before `since`, which a re-join repeats.

        `since` is the highest id a client saw, not proof that it saw every lower one: ids follow commit
        order, but DynamoDB may interleave the stream records of different transactions, so a lower id
        can reach a client after a higher one, or not before the client dropped. Clients drop repeats.
        """
        page = self.store.messages_before(workspace, channel, f"{int(since):017d}", protocol.RECOVER_OVERLAP)
        floor_ms = message_id_ms(since) - protocol.RECOVER_OVERLAP_MS
        return [m for m in page.messages if message_id_ms(m.id) >= floor_ms]

    def leave(self, caller: Caller, frame: protocol.LeaveFrame) -> Reply:
        """Unsubscribe this connection; with `membership`, end the caller's membership too (every one of
        the caller's connections is unsubscribed); with `user`, the creator removes that member."""
        if frame.user is not None:
            return self._remove_member(caller, frame.channel, frame.user)
        if not frame.membership and not self.store.is_subscribed(
            caller.connection_id, caller.workspace, frame.channel, self.clock.now_ms() // 1000
        ):
            return Reply(protocol.left(frame.channel))  # nothing to undo, so nothing is written
        self._take_rate(caller.workspace, caller.user.id, "leave")
        self._unsubscribe(caller.connection_id, caller.workspace, caller.user.id, frame.channel)
        if not frame.membership:
            return Reply(protocol.left(frame.channel))
        self.store.remove_member(caller.workspace, caller.user.id, frame.channel)
        self._unsubscribe_user(caller.workspace, caller.user.id, frame.channel)
        return Reply(protocol.left(frame.channel, membership=True))

    def _remove_member(self, caller: Caller, channel_id: str, user_id: str) -> Reply:
        channel = self._visible_channel(caller, channel_id)
        if caller.user.id != channel.created_by:
            raise Forbidden(f"only the creator of '{channel.id}' may remove its members")
        if user_id == caller.user.id:
            raise BadRequest("user: to leave a channel yourself, send membership: true instead")
        if not self.store.is_member(caller.workspace, user_id, channel.id):
            raise NotFound(f"'{user_id}' is not a member of '{channel.id}'")
        self._take_rate(caller.workspace, caller.user.id, "leave")
        self.store.remove_member(caller.workspace, user_id, channel.id)
        self._unsubscribe_user(caller.workspace, user_id, channel.id)
        return Reply(protocol.left(channel.id, membership=True, user=user_id))

    def _unsubscribe_user(self, workspace: str, user_id: str, channel: str) -> None:
        """Unsubscribe every live connection of a user from a channel (found through the user's
        connection slots, a Query): a membership that ended must stop the messages too."""
        now_s = self.clock.now_ms() // 1000
        for connection_id in self.store.user_connections(workspace, user_id, now_s):
            if self.store.is_subscribed(connection_id, workspace, channel, now_s):
                self._unsubscribe(connection_id, workspace, user_id, channel)

    # ---- messages ------------------------------------------------------------------------------

    def post_message(self, caller: Caller, frame: protocol.MessageFrame) -> Reply:
        self._require_joined(caller, frame.channel)
        command = PostCommand(
            workspace=caller.workspace,
            user_id=caller.user.id,
            user_name=caller.user.name,
            channel=frame.channel,
            text=frame.text,
            client_msg_id=frame.client_msg_id,
            thread_id=frame.thread_id,
        )
        posted = (
            self._append(command) if frame.client_msg_id is None else self.once.run(command, self._append)
        )
        return Reply(protocol.ack(_message_of(command, posted.id, posted.ts)))

    def send(self, command: PostCommand) -> Message:
        """post_message's send path without a connection (parley.apps): stored once per clientMsgId,
        rate-limited per sender, fanned out from the stream like any message."""
        posted = (
            self._append(command) if command.client_msg_id is None else self.once.run(command, self._append)
        )
        return _message_of(command, posted.id, posted.ts)

    def read_history(self, workspace: str, reader_id: str, frame: protocol.HistoryFrame) -> Reply:
        """history's page without a connection (parley.apps), rate-limited per reader."""
        self._take_rate(workspace, reader_id, "history")
        if frame.before is None:
            page = self.store.recent_messages(workspace, frame.channel, frame.limit)
        else:
            page = self.store.messages_before(workspace, frame.channel, frame.before, frame.limit)
        return Reply(protocol.history(frame.channel, page.messages, page.has_more))

    def _append(self, command: PostCommand) -> Posted:
        workspace, channel, thread_id = command.workspace, command.channel, command.thread_id
        if thread_id is not None:
            parent = self.store.get_message(workspace, channel, thread_id)
            # a thread hangs off a live top-level message (replies to a reply go to its thread's parent)
            if parent is None or parent.deleted or parent.thread_id is not None:
                raise NotFound(f"thread '{thread_id}' is not a message of channel '{channel}'")
        self._take_rate(workspace, command.user_id, "message")
        # read only when the text holds an `@` token: one BatchGetItem of the directory, at most
        mentions = resolve(command.text, workspace, self.directory)
        message_id = message_id_for(self.clock.now_ms())
        draft = _message_of(command, message_id, iso_ms(message_id_ms(message_id)), mentions)
        stored = self.store.append_message(draft)
        return Posted(id=stored.id, ts=stored.ts)

    def _take_rate(self, workspace: str, user_id: str, action: str) -> None:
        """Spend one of the user's `action` tokens or raise RateLimited (nothing written then). Called
        after a use case's checks and before its writes, so a refused frame writes nothing at all."""
        burst, rate = self.settings.rate_limit(action)
        what = "messages" if action == "message" else f"'{action}' requests"
        now = self.clock.now_ms()
        idle = decide(None, now, rate_per_s=rate, burst=burst)
        tat = self.store.claim_rate_if_idle(
            workspace, user_id, now, idle.new_tat_ms, _rate_expiry(idle.new_tat_ms), bucket=action
        )
        if tat is None:
            return  # within the rate: one conditional write, no read
        for _ in range(RATE_ATTEMPTS):
            decision = decide(tat, now, rate_per_s=rate, burst=burst)
            if not decision.allowed:
                raise RateLimited(decision.retry_after_ms, what)
            if self.store.save_rate_state(
                workspace,
                user_id,
                tat,
                decision.new_tat_ms,
                _rate_expiry(decision.new_tat_ms),
                bucket=action,
            ):
                return
            now = self.clock.now_ms()
            tat = self.store.rate_state(workspace, user_id, bucket=action)
        # lost the compare-and-set every time: the user's other connections are sending right now
        raise RateLimited(max(1, int(1000 / rate)), what)

    def history(self, caller: Caller, frame: protocol.HistoryFrame) -> Reply:
        self._require_joined(caller, frame.channel)
        self._take_rate(caller.workspace, caller.user.id, "history")
        if frame.before is None:
            page = self.store.recent_messages(caller.workspace, frame.channel, frame.limit)
        else:
            page = self.store.messages_before(caller.workspace, frame.channel, frame.before, frame.limit)
        messages = self._with_reactions(caller, frame.channel, page.messages)
        return Reply(protocol.history(frame.channel, messages, page.has_more))

    def react(self, caller: Caller, frame: protocol.ReactFrame) -> Reply:
        """Add or remove a reaction on a message of a channel this connection joined (parley.reacting)."""
        self._require_joined(caller, frame.channel)
        return Reply(
            reacting.react(
                self.store, caller, frame, lambda: self._take_rate(caller.workspace, caller.user.id, "react")
            )
        )

    def _with_reactions(self, caller: Caller, channel: str, messages: list[Message]) -> list[Message]:
        return reacting.with_reactions(self.store, caller.workspace, channel, caller.user.id, messages)

    def presence(self, caller: Caller, frame: protocol.PresenceFrame) -> Reply:
        self._require_joined(caller, frame.channel)
        self._take_rate(caller.workspace, caller.user.id, "presence")
        page = self.store.present_users(
            caller.workspace,
            frame.channel,
            self.clock.now_ms() // 1000,
            limit=frame.limit,
            after=frame.after,
        )
        return Reply(protocol.presence(frame.channel, page.users, page.has_more))

    def typing(self, caller: Caller, frame: protocol.TypingFrame) -> Reply:
        self._require_joined(caller, frame.channel)
        self._take_rate(caller.workspace, caller.user.id, "typing")
        # inside the window the store refuses the write; the frame is still accepted, silently
        self.store.touch_typing(caller, frame.channel, self.clock.now_ms(), TYPING_WINDOW_MS)
        return Reply(None)

    # ---- presence timers and the sweeper -------------------------------------------------------

    def finish_leave(self, workspace: str, channel: str, user_id: str) -> bool:
        """A grace period ended: broadcast the leave (by deleting the presence) unless the user came back."""
        # SQS may deliver a delayed message a little early; half a second of tolerance avoids a lost leave
        return self.store.finalize_leave(workspace, channel, user_id, self.clock.now_ms() + 500)

    def sweep(
        self,
        keep_going: Callable[[], bool] = lambda: True,
        *,
        workers: int = SWEEP_WORKERS,
        page: int = SWEEP_PAGE,
    ) -> SweepReport:
        """Finish overdue leaves and forget connections that stopped heartbeating: every shard of the
        `Due` index in a bounded pool of threads, each read page after page while `keep_going()`
        (the Lambda's remaining time), so a backlog larger than a page is worked off in one run.

        Every step is safe to run twice, so a run cut short, or two runs overlapping, only repeat work.
        """
        now = self.clock.now_ms()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            reports = list(
                pool.map(
                    lambda shard: self._sweep_shard(shard, now, keep_going, page), self.store.due_shards()
                )
            )
        return sum(reports, SweepReport())

    def _sweep_shard(self, shard: str, now: int, keep_going: Callable[[], bool], limit: int) -> SweepReport:
        stale = leaves = 0
        after: dict[str, Any] | None = None
        try:
            while keep_going():
                found = self.store.due_page(shard, now, limit, after)
                for item in found.items:
                    if not keep_going():
                        return SweepReport(stale, leaves, finished=False)
                    if item.kind == "connection":
                        stale += self._drop_stale(item, now)
                    elif self.finish_leave(item.workspace, item.channel, item.user_id):
                        leaves += 1
                if found.after is None:
                    return SweepReport(stale, leaves)
                after = found.after
        except Exception:  # the other shards go on; this one is read again by the next run
            logger.exception("sweep of a shard failed", extra={"due_shard": shard})
            return SweepReport(stale, leaves, finished=False, errors=1)
        return SweepReport(stale, leaves, finished=False)

    def _drop_stale(self, item: DueItem, now: int) -> bool:
        # The index is eventually consistent: a heartbeat may have refreshed the connection since it
        # was listed. Only a consistent read of the item itself may condemn it. (Leaves need no such
        # read: finalize_leave's condition is evaluated on the item as it is.)
        if not self.store.connection_due(item.connection_id, now):
            return False
        self._close_quietly(item.connection_id)
        self.disconnect(item.connection_id)
        return True

    def _close_quietly(self, connection_id: str) -> None:
        try:
            self.notifier.close(connection_id)
        except Exception:  # closing is a courtesy: the connection is forgotten either way
            logger.warning("could not close stale connection", extra={"stale_connection": connection_id})

    # ---- helpers -------------------------------------------------------------------------------

    def _visible_channel(self, caller: Caller, channel_id: str) -> Channel:
        """The channel if the caller may see it; otherwise NotFound, so its existence is not revealed."""
        channel = self.store.get_channel(caller.workspace, channel_id)
        if channel is None or (
            channel.private and not self.store.is_member(caller.workspace, caller.user.id, channel_id)
        ):
            raise NotFound(f"no channel '{channel_id}'")
        return channel

    def _require_joined(self, caller: Caller, channel: str) -> None:
        now_s = self.clock.now_ms() // 1000
        if not self.store.is_subscribed(caller.connection_id, caller.workspace, channel, now_s):
            raise NotJoined(f"join '{channel}' on this connection first")

    def _unsubscribe(self, connection_id: str, workspace: str, user_id: str, channel: str) -> None:
        self.store.unsubscribe(connection_id, workspace, channel)
        grace_ms = self.settings.presence_grace_seconds * 1000
        if self.store.presence_remove(
            workspace, channel, user_id, connection_id, self.clock.now_ms() + grace_ms
        ):
            try:
                self.timers.schedule_leave_check(
                    workspace, channel, user_id, self.settings.presence_grace_seconds
                )
            except StoreError:
                # the sweeper (every minute) and TTL finish the leave instead, only later
                logger.warning("presence timer not scheduled", extra={"channel": channel})

    def _connection_expiry_s(self, now_ms: int) -> int:
        return now_ms // 1000 + self.settings.heartbeat_timeout_seconds
