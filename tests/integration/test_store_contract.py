"""One contract for both stores: the DynamoDB store under moto and the in-memory one behave the same.

Every port method the in-memory store implements (parley.ports) is exercised here against both, so the
fakes the use-case tests rely on cannot drift from the real access patterns.
"""

from __future__ import annotations

from typing import Any

import pytest

from parley.errors import Conflict
from parley.ids import message_id_for
from parley.models import Caller, Channel, DueItem, Message, User
from parley.ports import ChatStore
from tests.support.memory_store import MemoryStore

NOW_MS = 1_790_000_000_000
NOW_S = NOW_MS // 1000
WS = "acme"
ALICE, BOB = User("alice", "Alice"), User("bob", "Bob")


def caller(user: User = ALICE, connection_id: str = "c1=", workspace: str = WS) -> Caller:
    return Caller(connection_id, user, workspace, token_expires_at=NOW_S + 3600)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> ChatStore:
    if request.param == "memory":
        return MemoryStore()
    from parley.store import Store

    world: Any = request.getfixturevalue("moto_aws")
    return Store.on(world.dynamodb, state_table="StateTable", messages_table="MessagesTable")


def connected(store: ChatStore, who: Caller, expires_at_s: int = NOW_S + 600) -> Caller:
    store.put_connection(who, NOW_MS, expires_at_s)
    return who


def draft(text: str, at_ms: int = NOW_MS, user: User = ALICE, channel: str = "general") -> Message:
    message_id = message_id_for(at_ms)
    return Message(message_id, WS, channel, "ts", user, text)


# ---- connections -------------------------------------------------------------------------------


def test_a_connection_is_stored_read_touched_and_deleted(store: ChatStore) -> None:
    # Given a stored connection
    alice = connected(store, caller())
    # When it is read, Then it has the caller's identity and no channels
    found = store.get_connection(alice.connection_id)
    assert found is not None and (found.user, found.workspace, found.channels) == (ALICE, WS, frozenset())
    # When it heartbeats, Then the touch succeeds; and after deletion it is gone and cannot be touched
    assert store.touch_connection(alice.connection_id, NOW_S + 1200) is True
    store.delete_connection(alice.connection_id)
    assert store.get_connection(alice.connection_id) is None
    assert store.touch_connection(alice.connection_id, NOW_S + 1200) is False


def test_an_unknown_connection_reads_as_none(store: ChatStore) -> None:
    assert store.get_connection("nobody=") is None


# ---- subscriptions and presence ----------------------------------------------------------------


def test_subscribe_lists_the_channel_the_subscriber_and_the_presence(store: ChatStore) -> None:
    # Given alice connected
    alice = connected(store, caller())
    # When she subscribes to general
    assert store.subscribe(alice, "general", NOW_S + 7800) is True
    # Then her connection lists it, she is a subscriber and present
    found = store.get_connection(alice.connection_id)
    assert found is not None and found.channels == frozenset({"general"})
    assert store.is_subscribed(alice.connection_id, WS, "general", NOW_S)
    assert [(s.connection_id, s.user_id) for s in store.subscribers(WS, "general", NOW_S)] == [
        (alice.connection_id, "alice")
    ]
    page = store.present_users(WS, "general", NOW_S, limit=10)
    assert (page.users, page.has_more) == ([ALICE], False)


def test_subscribing_a_forgotten_connection_writes_nothing(store: ChatStore) -> None:
    # Given a connection that was never stored (or was forgotten as stale)
    ghost = caller(connection_id="ghost=")
    # When it subscribes, Then the store refuses and leaves no subscription or presence behind
    assert store.subscribe(ghost, "general", NOW_S + 7800) is False
    assert store.subscribers(WS, "general", NOW_S) == []
    assert store.present_users(WS, "general", NOW_S, limit=10).users == []
    # positive control: the same subscribe after registering the connection is seen
    connected(store, ghost)
    assert store.subscribe(ghost, "general", NOW_S + 7800) is True
    assert [s.connection_id for s in store.subscribers(WS, "general", NOW_S)] == ["ghost="]


def test_expired_subscriptions_are_not_subscribers(store: ChatStore) -> None:
    alice = connected(store, caller())
    store.subscribe(alice, "general", NOW_S + 10)
    assert store.is_subscribed(alice.connection_id, WS, "general", NOW_S + 9)
    assert not store.is_subscribed(alice.connection_id, WS, "general", NOW_S + 10)
    assert store.subscribers(WS, "general", NOW_S + 10) == []
    assert store.present_users(WS, "general", NOW_S + 10, limit=10).users == []


def test_unsubscribe_says_whether_there_was_a_subscription(store: ChatStore) -> None:
    alice = connected(store, caller())
    store.subscribe(alice, "general", NOW_S + 7800)
    assert store.unsubscribe(alice.connection_id, WS, "general") is True
    assert store.unsubscribe(alice.connection_id, WS, "general") is False
    found = store.get_connection(alice.connection_id)
    assert found is not None and found.channels == frozenset()
    assert not store.is_subscribed(alice.connection_id, WS, "general", NOW_S)


def test_unsubscribe_works_when_the_connection_item_is_gone(store: ChatStore) -> None:
    alice = connected(store, caller())
    store.subscribe(alice, "general", NOW_S + 7800)
    store.delete_connection(alice.connection_id)
    assert store.unsubscribe(alice.connection_id, WS, "general") is True
    assert store.subscribers(WS, "general", NOW_S) == []


def test_the_last_connection_out_starts_the_grace_and_the_leave_finishes_after_it(store: ChatStore) -> None:
    # Given alice present through two connections
    one, two = connected(store, caller()), connected(store, caller(connection_id="c2="))
    store.subscribe(one, "general", NOW_S + 7800)
    store.subscribe(two, "general", NOW_S + 7800)
    leave_at = NOW_MS + 5000
    # When the first leaves, Then no grace starts; when the second leaves, it does
    assert store.presence_remove(WS, "general", "alice", one.connection_id, leave_at) is False
    assert store.presence_remove(WS, "general", "alice", two.connection_id, leave_at) is True
    # and a second count-out of the same connection does not start another one
    assert store.presence_remove(WS, "general", "alice", two.connection_id, leave_at) is False
    # Then the leave cannot finish before the grace is over, and does after it (once)
    assert store.finalize_leave(WS, "general", "alice", leave_at - 1) is False
    assert store.finalize_leave(WS, "general", "alice", leave_at) is True
    assert store.finalize_leave(WS, "general", "alice", leave_at) is False
    assert store.present_users(WS, "general", NOW_S, limit=10).users == []


def test_a_rejoin_during_the_grace_cancels_the_leave(store: ChatStore) -> None:
    alice = connected(store, caller())
    store.subscribe(alice, "general", NOW_S + 7800)
    assert store.presence_remove(WS, "general", "alice", alice.connection_id, NOW_MS + 5000) is True
    store.subscribe(alice, "general", NOW_S + 7800)
    assert store.finalize_leave(WS, "general", "alice", NOW_MS + 6000) is False
    assert store.present_users(WS, "general", NOW_S, limit=10).users == [ALICE]


def test_counting_out_of_an_unknown_presence_is_no_leave(store: ChatStore) -> None:
    assert store.presence_remove(WS, "general", "nobody", "c9=", NOW_MS) is False
    assert store.finalize_leave(WS, "general", "nobody", NOW_MS) is False


def test_present_users_page_in_id_order(store: ChatStore) -> None:
    # Given five users present
    for i in range(5):
        who = connected(store, caller(User(f"u{i}", f"User {i}"), connection_id=f"c{i}="))
        store.subscribe(who, "general", NOW_S + 7800)
    # When read two at a time, Then the pages follow the user ids and say whether more follow
    first = store.present_users(WS, "general", NOW_S, limit=2)
    assert ([u.id for u in first.users], first.has_more) == (["u0", "u1"], True)
    last = store.present_users(WS, "general", NOW_S, limit=2, after="u3")
    assert ([u.id for u in last.users], last.has_more) == (["u4"], False)
    exact = store.present_users(WS, "general", NOW_S, limit=5)
    assert (len(exact.users), exact.has_more) == (5, False)


def test_typing_is_recorded_at_most_once_per_window(store: ChatStore) -> None:
    alice = caller()
    assert store.touch_typing(alice, "general", NOW_MS, 2000) is True
    assert store.touch_typing(alice, "general", NOW_MS + 1999, 2000) is False
    assert store.touch_typing(alice, "general", NOW_MS + 2000, 2000) is True
    assert store.touch_typing(caller(BOB, "c2="), "general", NOW_MS + 2000, 2000) is True


# ---- workspaces, channels, membership ----------------------------------------------------------


def test_a_workspace_is_created_once_with_its_default_channels(store: ChatStore) -> None:
    assert store.workspace_exists(WS) is False
    store.create_workspace(WS, ["general", "random"], NOW_MS)
    store.create_workspace(WS, ["general", "other"], NOW_MS)  # a concurrent creator: nothing changes
    assert store.workspace_exists(WS) is True
    assert [c.id for c in store.list_channels(WS)] == ["general", "random"]
    assert store.get_channel(WS, "general") == Channel(WS, "general", False, "")
    assert store.list_channels("other-workspace") == []


def test_a_created_channel_has_its_creator_as_member_and_its_name_is_taken(store: ChatStore) -> None:
    secret = Channel(WS, "secret", True, "alice")
    store.create_channel(secret, NOW_MS)
    assert store.get_channel(WS, "secret") == secret
    assert store.is_member(WS, "alice", "secret") is True
    assert store.is_member(WS, "bob", "secret") is False
    with pytest.raises(Conflict):
        store.create_channel(Channel(WS, "secret", False, "bob"), NOW_MS)
    assert store.get_channel(WS, "secret") == secret


def test_members_are_added_and_listed_per_user(store: ChatStore) -> None:
    store.add_member(WS, "bob", "secret", NOW_MS)
    store.add_member(WS, "bob", "general", NOW_MS)
    store.add_member(WS, "bob", "general", NOW_MS + 1)  # again: still one membership
    assert store.member_channels(WS, "bob") == {"secret", "general"}
    assert store.member_channels(WS, "alice") == set()
    assert store.get_channel(WS, "nope") is None


# ---- messages ----------------------------------------------------------------------------------


def test_appended_messages_read_back_newest_page_oldest_first(store: ChatStore) -> None:
    # Given five messages a second apart
    stored = [store.append_message(draft(f"m{i}", NOW_MS + i * 1000)) for i in range(5)]
    ids = [m.id for m in stored]
    # Then recent pages end at the newest, before pages page back, after pages recover
    recent = store.recent_messages(WS, "general", 2)
    assert ([m.text for m in recent.messages], recent.has_more) == (["m3", "m4"], True)
    before = store.messages_before(WS, "general", ids[3], 2)
    assert ([m.text for m in before.messages], before.has_more) == (["m1", "m2"], True)
    first = store.messages_before(WS, "general", ids[1], 2)
    assert ([m.text for m in first.messages], first.has_more) == (["m0"], False)
    after = store.messages_after(WS, "general", ids[1], 10)
    assert ([m.text for m in after.messages], after.has_more) == (["m2", "m3", "m4"], False)
    gap = store.messages_after(WS, "general", ids[0], 2)
    assert ([m.text for m in gap.messages], gap.has_more) == (["m3", "m4"], True)
    assert store.get_message(WS, "general", ids[2]) == stored[2]
    assert store.get_message(WS, "general", "00000000000000001") is None
    assert store.recent_messages(WS, "random", 5).messages == []


def test_a_message_with_a_colliding_or_older_id_gets_one_after_the_channels_last(store: ChatStore) -> None:
    # Given a message stored
    first = store.append_message(draft("first", NOW_MS + 5000))
    # When another arrives with an earlier id (a writer with a slower clock)
    second = store.append_message(Message(first.id, WS, "general", "ts", BOB, "second", "c-2", None))
    # Then it is stored after the first, with a timestamp matching its new id, nothing else changed
    assert second.id > first.id and second.ts != "ts"
    assert (second.text, second.user, second.client_msg_id) == ("second", BOB, "c-2")
    assert [m.id for m in store.recent_messages(WS, "general", 5).messages] == [first.id, second.id]


def test_message_attributes_survive_the_round_trip(store: ChatStore) -> None:
    parent = store.append_message(draft("parent"))
    reply = Message(message_id_for(NOW_MS + 1000), WS, "general", "ts", ALICE, "reply", "c-1", parent.id)
    store.append_message(reply)
    assert store.get_message(WS, "general", reply.id) == reply


# ---- rate state --------------------------------------------------------------------------------


def test_rate_state_is_claimed_when_idle_and_compare_and_set_otherwise(store: ChatStore) -> None:
    # Given no state: the claim writes it
    assert store.claim_rate_if_idle(WS, "alice", NOW_MS, NOW_MS + 200, NOW_S + 60) is None
    assert store.rate_state(WS, "alice") == NOW_MS + 200
    # When the user is ahead of their rate, Then the claim writes nothing and returns the stored state
    assert store.claim_rate_if_idle(WS, "alice", NOW_MS + 100, NOW_MS + 300, NOW_S + 60) == NOW_MS + 200
    assert store.rate_state(WS, "alice") == NOW_MS + 200
    # and compare-and-set succeeds only on the state it read
    assert store.save_rate_state(WS, "alice", NOW_MS + 100, NOW_MS + 400, NOW_S + 60) is False
    assert store.save_rate_state(WS, "alice", NOW_MS + 200, NOW_MS + 400, NOW_S + 60) is True
    assert store.rate_state(WS, "alice") == NOW_MS + 400
    # once the stored state is not after now, the user is idle again
    assert store.claim_rate_if_idle(WS, "alice", NOW_MS + 400, NOW_MS + 600, NOW_S + 60) is None


def test_rate_state_compare_and_set_from_nothing(store: ChatStore) -> None:
    assert store.rate_state(WS, "bob") is None
    assert store.save_rate_state(WS, "bob", None, NOW_MS, NOW_S + 60) is True
    assert store.save_rate_state(WS, "bob", None, NOW_MS + 1, NOW_S + 60) is False
    assert store.rate_state(WS, "bob") == NOW_MS


# ---- the sweeper's work ------------------------------------------------------------------------


def test_due_items_are_stale_connections_and_overdue_leaves(store: ChatStore) -> None:
    # Given a connection that stops heartbeating, one that heartbeats, and a leave in its grace
    stale = connected(store, caller(BOB, "stale="), expires_at_s=NOW_S + 600)
    alive = connected(store, caller(ALICE, "alive="), expires_at_s=NOW_S + 600)
    store.touch_connection(alive.connection_id, NOW_S + 1200)
    store.subscribe(alive, "general", NOW_S + 7800)
    store.presence_remove(WS, "general", "alice", alive.connection_id, NOW_MS + 5000)
    # Then nothing is due yet; the leave is due after its grace; the stale connection after its expiry
    assert store.due_items(NOW_MS) == []
    assert store.due_items(NOW_MS + 5000) == [
        DueItem("presence", workspace=WS, channel="general", user_id="alice")
    ]
    due = store.due_items((NOW_S + 600) * 1000)
    assert set(due) == {
        DueItem("connection", connection_id=stale.connection_id),
        DueItem("presence", workspace=WS, channel="general", user_id="alice"),
    }
    # When the leave is finished and the stale connection deleted, Then nothing is due any more
    store.finalize_leave(WS, "general", "alice", NOW_MS + 5000)
    store.delete_connection(stale.connection_id)
    assert store.due_items((NOW_S + 600) * 1000) == []


def test_due_items_are_limited_per_shard(store: ChatStore) -> None:
    for i in range(30):
        connected(store, caller(connection_id=f"s{i:02d}="), expires_at_s=NOW_S)
    assert len(store.due_items(NOW_MS, per_shard=100)) == 30
    # these 30 ids fall into all 10 shards: one from each
    assert len(store.due_items(NOW_MS, per_shard=1)) == 10


# ---- Query pages: DynamoDB stops a page at 1 MB ------------------------------------------------
#
# The ports return whole answers, so the in-memory store has no pages: what the contract checks is
# that the DynamoDB store, whose Queries stop at 1 MB (moto models it, RESULT_SIZE_LIMIT), gives the
# same answers as the in-memory one when its pages are cut early. `small_pages` cuts moto's pages
# to a few items, so each access pattern crosses several pages cheaply.

SMALL_PAGE_BYTES = 1000


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("moto.dynamodb.models.table.RESULT_SIZE_LIMIT", SMALL_PAGE_BYTES)
    return SMALL_PAGE_BYTES


def test_message_pages_read_on_past_a_1_mb_query_page(store: ChatStore) -> None:
    # Given 70 messages of 4,000 emoji (16 KB each, 1.1 MB in all: one Query page holds about 60)
    text = "\U0001f600" * 4000
    ids = [store.append_message(draft(text, NOW_MS + i)).id for i in range(70)]
    # When the newest 65 are read, Then all 65 come back and there are older ones
    recent = store.recent_messages(WS, "general", 65)
    assert ([m.id for m in recent.messages], recent.has_more) == (ids[5:], True)
    # When paging back from the oldest of them, Then the rest follow without gap or repeat
    older = store.messages_before(WS, "general", ids[5], 65)
    assert ([m.id for m in older.messages], older.has_more) == (ids[:5], False)
    # When recovering after the first, Then the newest 65 come, and more were missed
    missed = store.messages_after(WS, "general", ids[0], 65)
    assert ([m.id for m in missed.messages], missed.has_more) == (ids[5:], True)


def test_message_pages_cross_query_pages_exactly(store: ChatStore, small_pages: int) -> None:
    # Given 12 messages and Query pages of a few messages each
    ids = [store.append_message(draft(f"m{i}" * 20, NOW_MS + i)).id for i in range(12)]
    # Then every read gives what one unlimited Query would
    for limit in (1, 5, 11, 12, 13):
        page = store.recent_messages(WS, "general", limit)
        assert ([m.id for m in page.messages], page.has_more) == (ids[-limit:], limit < 12)
    page = store.messages_before(WS, "general", ids[6], 6)
    assert ([m.id for m in page.messages], page.has_more) == (ids[:6], False)


def test_presence_pages_cross_query_pages_and_skip_expired_users(store: ChatStore, small_pages: int) -> None:
    # Given 12 users present and, between them, 6 whose presence expired (still stored: TTL is lazy)
    for i in range(18):
        who = connected(store, caller(User(f"u{i:02d}", f"User {i}"), connection_id=f"c{i}="))
        store.subscribe(who, "general", NOW_S - 1 if i % 3 == 2 else NOW_S + 7800)
    live = [f"u{i:02d}" for i in range(18) if i % 3 != 2]
    # When read in pages of 5 following the cursor, Then every live user comes once, in id order
    seen: list[str] = []
    after: str | None = None
    while True:
        page = store.present_users(WS, "general", NOW_S, limit=5, after=after)
        seen += [u.id for u in page.users]
        if not page.has_more:
            break
        after = page.users[-1].id
    assert seen == live


def test_subscribers_channels_and_memberships_cross_query_pages(store: ChatStore, small_pages: int) -> None:
    # Given 15 subscribers, 15 channels and 15 memberships of one user
    for i in range(15):
        store.subscribe(connected(store, caller(connection_id=f"s{i:02d}=")), "general", NOW_S + 7800)
        store.create_channel(Channel(WS, f"channel-{i:02d}", False, "bob"), NOW_MS)
    # Then each list is whole
    assert len(store.subscribers(WS, "general", NOW_S)) == 15
    assert [c.id for c in store.list_channels(WS)] == [f"channel-{i:02d}" for i in range(15)]
    assert store.member_channels(WS, "bob") == {f"channel-{i:02d}" for i in range(15)}


def test_due_items_cross_query_pages_up_to_the_shards_limit(store: ChatStore, small_pages: int) -> None:
    # Given 60 stale connections (about 6 per shard) and Query pages of a few items
    for i in range(60):
        connected(store, caller(connection_id=f"s{i:02d}="), expires_at_s=NOW_S)
    # Then every one is due, and the per-shard limit still holds
    assert len(store.due_items(NOW_MS, per_shard=100)) == 60
    assert len(store.due_items(NOW_MS, per_shard=1)) == 10
