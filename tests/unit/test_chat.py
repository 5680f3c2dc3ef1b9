"""The chat use cases against the in-memory store and fakes: fast, no AWS, no handlers."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, TypeVar

import pytest

from parley import chat as chat_module
from parley import protocol
from parley.chat import DEFAULT_CHANNELS, Chat
from parley.config import Settings
from parley.errors import Conflict, NotFound, NotJoined, RateLimited, TokenExpired
from parley.idempotency import InMemoryOnce
from parley.models import Caller, Channel, DueItem, DuePage, User
from parley.store import keys
from tests.support.fakes import FakeClock, FakeNotifier, FakeTimers
from tests.support.memory_store import MemoryStore

F = TypeVar("F", bound=protocol.Frame)
WS = "acme"
SETTINGS = Settings(
    state_table="StateTable",
    messages_table="MessagesTable",
    idempotency_table="IdempotencyTable",
    connections_endpoint="https://example.invalid/prod",
    presence_grace_seconds=5,
    rate_burst=3,
    rate_per_second=1,
)


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.notifier = FakeNotifier()
        self.timers = FakeTimers()
        self.clock = FakeClock()
        self.chat = Chat(
            store=self.store,
            notifier=self.notifier,
            timers=self.timers,
            once=InMemoryOnce(),
            clock=self.clock,
            settings=SETTINGS,
        )

    def connect(self, user_id: str, connection_id: str | None = None) -> Caller:
        caller = Caller(
            connection_id or f"{user_id}-1=",
            User(user_id, user_id.title()),
            WS,
            token_expires_at=self.clock.now_ms() // 1000 + 3600,
        )
        self.chat.connect(caller, self.clock.now_ms())
        return caller

    def join(self, caller: Caller, channel: str = "general", **extra: Any) -> dict[str, Any]:
        reply = self.chat.join(caller, frame(protocol.JoinFrame, action="join", channel=channel, **extra))
        assert reply.frame is not None
        return reply.frame

    def say(self, caller: Caller, text: str, channel: str = "general", **extra: Any) -> dict[str, Any]:
        body = {"action": "message", "channel": channel, "text": text, **extra}
        reply = self.chat.post_message(caller, frame(protocol.MessageFrame, **body))
        assert reply.frame is not None
        return reply.frame


def frame(model: type[F], **body: Any) -> F:
    return protocol.parse_frame(json.dumps(body), model)


@pytest.fixture
def world() -> World:
    return World()


# ---- lifecycle ---------------------------------------------------------------------------------


def test_the_first_connection_of_a_workspace_creates_it_with_the_default_channels(world: World) -> None:
    # Given a workspace nobody has connected to
    assert not world.store.workspace_exists(WS)
    # When alice connects
    alice = world.connect("alice")
    # Then the workspace exists with its default channels, and her connection is registered
    assert world.store.workspace_exists(WS)
    assert [c.id for c in world.store.list_channels(WS)] == sorted(DEFAULT_CHANNELS)
    assert world.store.get_connection(alice.connection_id) is not None


def test_disconnect_forgets_the_connection_and_starts_the_presence_grace(world: World) -> None:
    # Given alice joined general
    alice = world.connect("alice")
    world.join(alice)
    # When she disconnects (twice: $disconnect and the sweeper may both run)
    world.chat.disconnect(alice.connection_id)
    world.chat.disconnect(alice.connection_id)
    # Then her connection and subscription are gone and one leave check was scheduled after the grace
    assert world.store.get_connection(alice.connection_id) is None
    assert world.store.subscribers(WS, "general", world.clock.now_ms() // 1000) == []
    assert world.timers.scheduled == [(WS, "general", "alice", 5)]


def test_an_expired_token_is_refused(world: World) -> None:
    # Given alice whose token expires now
    alice = world.connect("alice")
    world.clock.now = alice.token_expires_at * 1000
    # When she sends anything, Then the token check refuses it
    with pytest.raises(TokenExpired):
        world.chat.check_token(alice)
    # positive control: a millisecond earlier it was accepted
    world.clock.now -= 1
    world.chat.check_token(alice)


def test_a_heartbeat_keeps_a_connection_from_being_swept(world: World) -> None:
    # Given alice and bob connected; only alice heartbeats after 5 minutes
    alice, bob = world.connect("alice"), world.connect("bob")
    world.clock.advance(300_000)
    reply = world.chat.heartbeat(alice)
    assert reply.frame is not None and reply.frame["type"] == "heartbeat"
    # When the sweeper runs after bob's 10 minutes without a heartbeat
    world.clock.advance(301_000)
    stale = world.chat.sweep().stale
    # Then bob is forgotten (and told, by a close), alice is not
    assert stale == 1
    assert world.store.get_connection(bob.connection_id) is None
    assert world.store.get_connection(alice.connection_id) is not None
    assert world.notifier.closed == [bob.connection_id]


def test_a_heartbeat_within_two_minutes_of_the_last_write_writes_nothing(world: World) -> None:
    # Given alice connected (one write of her expiry)
    alice = world.connect("alice")
    writes = world.store.connection_writes
    # When she heartbeats a minute later, Then her expiry is not rewritten
    world.clock.advance(60_000)
    world.chat.heartbeat(alice)
    assert world.store.connection_writes == writes
    # When she heartbeats two minutes after the connect, Then it is
    world.clock.advance(60_000)
    world.chat.heartbeat(alice)
    assert world.store.connection_writes == writes + 1


@pytest.mark.parametrize("every_s", [30, 60, 119, 240, 300, 480])
def test_a_connection_heartbeating_is_never_swept(world: World, every_s: int) -> None:
    # Given alice heartbeating every `every_s` seconds for an hour (the web client: 4 to 5 minutes),
    # and the sweeper running every minute
    alice = world.connect("alice")
    for second in range(1, 3601):
        world.clock.advance(1000)
        if second % every_s == 0:
            world.chat.heartbeat(alice)
        if second % 60 == 0:
            # Then it never finds her due
            assert world.chat.sweep().stale == 0, second
    assert world.store.get_connection(alice.connection_id) is not None
    assert world.notifier.closed == []


def stale_listing(world: World, item: DueItem, listed_in: str) -> None:
    """Make the store's `Due` index list `item` in `shard`, as an eventually consistent GSI may
    after the item has changed."""

    def due_page(shard: str, now_ms: int, limit: int, after: dict[str, Any] | None = None) -> DuePage:
        return DuePage([item] if shard == listed_in and after is None else [])

    world.store.due_page = due_page  # type: ignore[method-assign]


def test_the_sweeper_does_not_close_a_connection_the_index_lists_but_a_heartbeat_refreshed(
    world: World,
) -> None:
    # Given alice, silent for 10 minutes, whom the index still lists as due after she heartbeated
    alice = world.connect("alice")
    world.join(alice)
    world.clock.advance(600_000)
    world.chat.heartbeat(alice)
    item = DueItem("connection", connection_id=alice.connection_id)
    stale_listing(world, item, keys.connection_due_shard(alice.connection_id))
    # When the sweeper runs, Then it reads her item, finds her alive, and leaves her be
    report = world.chat.sweep()
    assert report.stale == 0
    assert world.notifier.closed == []
    assert world.store.get_connection(alice.connection_id) is not None
    assert world.store.is_subscribed(alice.connection_id, WS, "general", world.clock.now_ms() // 1000)


def test_the_sweeper_does_not_finish_a_leave_the_index_lists_but_the_user_came_back(world: World) -> None:
    # Given alice left general, came back within the grace, and the index still lists her leave
    alice = world.connect("alice")
    world.join(alice)
    world.chat.leave(alice, frame(protocol.LeaveFrame, action="leave", channel="general"))
    world.join(alice)
    world.clock.advance(6_000)
    item = DueItem("presence", workspace=WS, channel="general", user_id="alice")
    stale_listing(world, item, keys.presence_due_shard(WS, "general", "alice"))
    # When the sweeper runs, Then she stays present
    assert world.chat.sweep().leaves == 0
    now_s = world.clock.now_ms() // 1000
    assert [u.id for u in world.store.present_users(WS, "general", now_s, limit=5).users] == ["alice"]


def test_a_sweep_with_more_due_than_a_page_keeps_going(world: World) -> None:
    # Given 100 connections silent for 10 minutes: more than one page of one per shard
    callers = [world.connect(f"u{i}") for i in range(100)]
    world.clock.advance(600_000)
    # When the sweeper reads one item per page, Then it still forgets all of them in one run
    report = world.chat.sweep(page=1)
    assert (report.stale, report.finished) == (100, True)
    assert all(world.store.get_connection(c.connection_id) is None for c in callers)


def test_a_sweep_stops_at_its_deadline_and_the_next_one_goes_on(world: World) -> None:
    # Given 100 stale connections, and a deadline that allows about 30 steps
    for i in range(100):
        world.connect(f"u{i}")
    world.clock.advance(600_000)
    budget = iter(range(30))

    def keep_going() -> bool:
        return next(budget, None) is not None

    # When the sweeper runs, Then it stops early and says so
    first = world.chat.sweep(keep_going, workers=1)
    assert first.finished is False and 0 < first.stale < 100
    # And the next run finishes the rest
    second = world.chat.sweep()
    assert (first.stale + second.stale, second.finished) == (100, True)


def test_the_sweeper_works_the_shards_in_parallel_and_sweeps_every_one(world: World) -> None:
    # Given a stale connection in every shard of the index
    by_shard: dict[str, str] = {}
    for i in range(10_000):
        by_shard.setdefault(keys.connection_due_shard(f"p{i}="), f"p{i}=")
        if len(by_shard) == keys.DUE_SHARDS:
            break
    for n, connection_id in enumerate(by_shard.values()):
        world.connect(f"u{n}", connection_id)
    world.clock.advance(600_000)
    threads: set[str] = set()
    read = world.store.due_page

    def due_page(shard: str, now_ms: int, limit: int, after: dict[str, Any] | None = None) -> DuePage:
        threads.add(threading.current_thread().name)
        time.sleep(0.002)  # a query's latency, so the pool's threads overlap
        return read(shard, now_ms, limit, after)

    world.store.due_page = due_page  # type: ignore[method-assign]
    # When the sweeper runs with 4 workers
    report = world.chat.sweep(workers=4)
    # Then every shard's connection is gone, and more than one thread did the work (at most 4)
    assert report.stale == keys.DUE_SHARDS
    assert sorted(world.notifier.closed) == sorted(by_shard.values())
    assert 1 < len(threads) <= 4


# ---- channels ----------------------------------------------------------------------------------


def test_join_answers_recent_messages_and_presence_with_the_joiner(world: World) -> None:
    # Given bob in general who said hello
    bob = world.connect("bob")
    world.join(bob)
    world.say(bob, "hello")
    # When alice joins
    alice = world.connect("alice")
    joined = world.join(alice)
    # Then she sees the message, both present, and she became a member of the public channel
    assert [m["text"] for m in joined["messages"]] == ["hello"]
    assert {u["id"] for u in joined["presence"]} == {"alice", "bob"}
    assert world.store.is_member(WS, "alice", "general")


def test_join_with_since_recovers_what_was_missed(world: World) -> None:
    # Given alice saw the first message, then two more were sent
    alice = world.connect("alice")
    world.join(alice)
    first = world.say(alice, "one")
    for text in ("two", "three"):
        world.clock.advance(1000)
        world.say(alice, text)
    # When she joins again with since = the first id
    joined = world.join(alice, since=first["id"])
    # Then she gets exactly the two she missed
    assert [m["text"] for m in joined["messages"]] == ["two", "three"] and joined["recovered"] is True


def test_a_forgotten_connection_that_joins_is_registered_again(world: World) -> None:
    # Given alice's connection was forgotten (a 410 that was not true)
    alice = world.connect("alice")
    world.store.delete_connection(alice.connection_id)
    # When she joins, Then the join succeeds and her connection is known again
    assert world.join(alice)["type"] == "joined"
    connection = world.store.get_connection(alice.connection_id)
    assert connection is not None and connection.channels == frozenset({"general"})


def test_a_private_channel_is_invisible_until_invited(world: World) -> None:
    # Given alice created a private channel
    alice, bob = world.connect("alice"), world.connect("bob")
    created = world.chat.create_channel(
        alice, frame(protocol.CreateChannelFrame, action="create_channel", name="secret", private=True)
    )
    assert created.frame is not None and created.frame["type"] == "channel_created"
    secret = created.frame["channel"]["id"]
    # When bob tries to join or list it, Then it does not exist for him
    with pytest.raises(NotFound):
        world.join(bob, secret)
    listed = world.chat.list_channels(bob, frame(protocol.ChannelsFrame, action="channels")).frame
    assert listed is not None and secret not in {c["id"] for c in listed["channels"]}
    # When alice invites him, Then he can join and sees it listed
    world.chat.invite(alice, frame(protocol.InviteFrame, action="invite", channel=secret, user="bob"))
    assert world.join(bob, secret)["type"] == "joined"
    listed = world.chat.list_channels(bob, frame(protocol.ChannelsFrame, action="channels")).frame
    assert listed is not None and secret in {c["id"] for c in listed["channels"]}


def _create(world: World, caller: Any, name: str, *, private: bool) -> dict[str, Any]:
    reply = world.chat.create_channel(
        caller, frame(protocol.CreateChannelFrame, action="create_channel", name=name, private=private)
    ).frame
    assert reply is not None
    return reply


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_creating_a_private_channels_name_answers_exactly_as_a_fresh_name(
    world: World, private: bool
) -> None:
    # Given alice's private channel `hush`, which bob cannot see
    alice, bob = world.connect("alice"), world.connect("bob")
    _create(world, alice, "hush", private=True)
    # When bob creates `hush`, and a fresh `fresh` the same way
    taken, fresh = _create(world, bob, "hush", private=private), _create(world, bob, "fresh", private=private)

    # Then both are created and the answers differ only by the name (and a private id's random suffix)
    def shape(reply: dict[str, Any], name: str) -> dict[str, Any]:
        channel = reply["channel"]
        assert channel["name"] == name and channel["id"].split(".")[0] == name
        return {**reply, "channel": {**channel, "id": channel["id"].count("."), "name": None}}

    assert shape(taken, "hush") == shape(fresh, "fresh")


def test_a_private_channel_gets_a_fresh_id_when_its_first_one_is_taken(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the next random id drawn for a private channel is one already in use
    alice = world.connect("alice")
    first = _create(world, alice, "hush", private=True)["channel"]["id"]
    drawn = iter([first, "hush.0123456789"])
    monkeypatch.setattr(chat_module, "private_channel_id", lambda name: next(drawn))
    # When alice creates another private `hush`
    second = _create(world, alice, "hush", private=True)["channel"]
    # Then it is created under the next id drawn, with the same name
    assert second["id"] == "hush.0123456789" and second["name"] == "hush"


def test_a_long_channel_list_is_paged_with_after_and_next(world: World) -> None:
    # Given a workspace with 800 public channels of 80-character names (about 160 KB as one list)
    alice = world.connect("alice")
    names = sorted(["general", "random"] + [f"{i:03d}" + "c" * 77 for i in range(800)])
    for name in [n for n in names if n not in ("general", "random")]:
        world.store.create_channel(Channel(WS, name, False, "bob"), 0)
    # When alice lists channels, and again `after` each page's `next`
    listed: list[str] = []
    after: dict[str, Any] = {}
    pages = 0
    while True:
        page = world.chat.list_channels(
            alice, frame(protocol.ChannelsFrame, action="channels", **after)
        ).frame
        assert page is not None and len(protocol.encode(page).encode()) <= protocol.FRAME_BUDGET
        listed += [c["name"] for c in page["channels"]]
        pages += 1
        if page["next"] is None:
            break
        after = {"after": page["next"]}
    # Then the pages list every channel once, in name order
    assert listed == names and pages > 1


def test_a_taken_channel_name_is_a_conflict(world: World) -> None:
    alice = world.connect("alice")
    with pytest.raises(Conflict):
        world.chat.create_channel(
            alice, frame(protocol.CreateChannelFrame, action="create_channel", name="general")
        )
    assert world.store.get_channel(WS, "general") == Channel(WS, "general", False, "")


# ---- messages ----------------------------------------------------------------------------------


def test_a_message_needs_a_joined_channel(world: World) -> None:
    # Given alice connected but not joined
    alice = world.connect("alice")
    # When she posts, Then she is told to join first and nothing is stored
    with pytest.raises(NotJoined):
        world.say(alice, "hi")
    assert world.store.recent_messages(WS, "general", 10).messages == []
    # positive control: after joining the same post is stored
    world.join(alice)
    world.say(alice, "hi")
    assert [m.text for m in world.store.recent_messages(WS, "general", 10).messages] == ["hi"]


def test_a_repeated_client_msg_id_is_stored_once_and_acked_the_same(world: World) -> None:
    # Given alice in general
    alice = world.connect("alice")
    world.join(alice)
    # When she sends the same clientMsgId twice (a retry)
    first = world.say(alice, "hi", clientMsgId="c-1")
    again = world.say(alice, "hi", clientMsgId="c-1")
    # Then both acks are the same and one message was stored
    assert first == again and first["type"] == "ack" and first["clientMsgId"] == "c-1"
    assert len(world.store.recent_messages(WS, "general", 10).messages) == 1
    # and the same id with another text is a client bug, refused
    with pytest.raises(Conflict):
        world.say(alice, "something else", clientMsgId="c-1")


def test_a_reply_must_name_a_message_of_the_channel(world: World) -> None:
    alice = world.connect("alice")
    world.join(alice)
    with pytest.raises(NotFound):
        world.say(alice, "re", threadId="17900000000000001")
    parent = world.say(alice, "parent")
    world.clock.advance(1000)
    world.say(alice, "re", threadId=parent["id"])
    stored = world.store.recent_messages(WS, "general", 10).messages
    assert [(m.text, m.thread_id) for m in stored] == [("parent", None), ("re", parent["id"])]


def test_a_burst_beyond_the_rate_is_refused_with_a_retry_time(world: World) -> None:
    # Given alice in general, with a burst of 3 and 1 message a second
    alice = world.connect("alice")
    world.join(alice)
    # When she sends 4 at once, Then the fourth is refused and not stored
    for i in range(3):
        world.say(alice, f"m{i}")
    with pytest.raises(RateLimited) as refused:
        world.say(alice, "m3")
    assert refused.value.retry_after_ms > 0
    assert len(world.store.recent_messages(WS, "general", 10).messages) == 3
    # When she waits as long as told, Then she may send again
    world.clock.advance(refused.value.retry_after_ms)
    world.say(alice, "m3")


def test_history_pages_backwards(world: World) -> None:
    alice = world.connect("alice")
    world.join(alice)
    for i in range(4):
        world.clock.advance(1000)
        world.say(alice, f"m{i}")
    newest = world.chat.history(
        alice, frame(protocol.HistoryFrame, action="history", channel="general", limit=2)
    )
    assert newest.frame is not None
    before = newest.frame["messages"][0]["id"]
    older = world.chat.history(
        alice, frame(protocol.HistoryFrame, action="history", channel="general", limit=2, before=before)
    )
    assert older.frame is not None
    assert [m["text"] for m in newest.frame["messages"]] == ["m2", "m3"] and newest.frame["hasMore"]
    assert [m["text"] for m in older.frame["messages"]] == ["m0", "m1"] and not older.frame["hasMore"]


def test_typing_is_recorded_once_per_window_and_answers_nothing(world: World) -> None:
    alice = world.connect("alice")
    world.join(alice)
    typing = frame(protocol.TypingFrame, action="typing", channel="general")
    assert world.chat.typing(alice, typing).frame is None
    first = world.store.typing[(WS, "general", "alice")]
    world.clock.advance(1000)
    world.chat.typing(alice, typing)
    assert world.store.typing[(WS, "general", "alice")] == first
    world.clock.advance(1000)
    world.chat.typing(alice, typing)
    assert world.store.typing[(WS, "general", "alice")] == first + 2000


# ---- presence ----------------------------------------------------------------------------------


def test_a_leave_finishes_after_the_grace_unless_the_user_came_back(world: World) -> None:
    # Given alice and bob in general; alice leaves
    alice, bob = world.connect("alice"), world.connect("bob")
    world.join(alice)
    world.join(bob)
    left = world.chat.leave(alice, frame(protocol.LeaveFrame, action="leave", channel="general"))
    assert left.frame == {"type": "left", "channel": "general"}
    # When the timer fires before the grace is over, Then she is still present
    assert world.chat.finish_leave(WS, "general", "alice") is False
    # When it fires after the grace, Then she is gone, bob stays
    world.clock.advance(5_000)
    assert world.chat.finish_leave(WS, "general", "alice") is True
    present = world.chat.presence(
        bob, frame(protocol.PresenceFrame, action="presence", channel="general")
    ).frame
    assert present is not None and [u["id"] for u in present["users"]] == ["bob"]


def test_a_quick_rejoin_cancels_the_leave(world: World) -> None:
    # Given alice left general and came back within the grace
    alice = world.connect("alice")
    world.join(alice)
    world.chat.leave(alice, frame(protocol.LeaveFrame, action="leave", channel="general"))
    world.join(alice)
    # When the timer fires after the grace, Then no leave happens
    world.clock.advance(5_000)
    assert world.chat.finish_leave(WS, "general", "alice") is False
    assert [
        u.id for u in world.store.present_users(WS, "general", world.clock.now_ms() // 1000, limit=5).users
    ] == ["alice"]


def test_the_sweeper_finishes_a_leave_whose_timer_was_lost(world: World) -> None:
    # Given alice left general and her timer never fired
    alice = world.connect("alice")
    world.join(alice)
    world.chat.leave(alice, frame(protocol.LeaveFrame, action="leave", channel="general"))
    world.timers.scheduled.clear()
    # When the sweeper runs after the grace, Then it finishes the leave
    world.clock.advance(6_000)
    report = world.chat.sweep()
    assert (report.stale, report.leaves) == (0, 1)
    assert world.store.present_users(WS, "general", world.clock.now_ms() // 1000, limit=5).users == []


def test_gone_connections_are_forgotten_including_subscriptions_they_no_longer_list(world: World) -> None:
    # Given bob joined general, and his connection item lost its channel list
    bob = world.connect("bob")
    world.join(bob)
    world.store.connections[bob.connection_id].channels.clear()
    # When a post to him answers GoneException
    world.chat.forget_gone(bob.connection_id, [(WS, "general", "bob")])
    # Then he is closed and forgotten, and no longer a subscriber
    assert world.notifier.closed == [bob.connection_id]
    assert world.store.get_connection(bob.connection_id) is None
    assert world.store.subscribers(WS, "general", world.clock.now_ms() // 1000) == []
