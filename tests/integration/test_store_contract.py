"""One contract for both stores: the DynamoDB store under moto and the in-memory one behave the same.

Every port method the in-memory store implements (parley.ports) is exercised here against both, so the
fakes the use-case tests rely on cannot drift from the real access patterns.
"""

from __future__ import annotations

from typing import Any

import pytest

from parley.errors import Conflict, NotFound
from parley.ids import message_id_for
from parley.models import Caller, Channel, DueItem, Message, User
from parley.ports import ChatStore
from parley.store import keys
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


def test_a_reply_counts_on_its_parent_and_pages_from_its_thread(store: ChatStore) -> None:
    # Given a parent and three replies
    parent = store.append_message(draft("parent"))
    replies = [
        store.append_message(
            Message(message_id_for(NOW_MS + 1000 * i), WS, "general", f"t{i}", BOB, f"r{i}", None, parent.id)
        )
        for i in range(1, 4)
    ]
    # Then the parent counts them, with the last one's time, and the thread pages them oldest first
    counted = store.current_message(WS, "general", parent.id)
    assert counted is not None
    assert (counted.reply_count, counted.last_reply_at, counted.thread_version) == (3, "t3", 3)
    first = store.thread_replies(WS, "general", parent.id, None, 2)
    assert [m.id for m in first.messages] == [r.id for r in replies[:2]] and first.has_more
    rest = store.thread_replies(WS, "general", parent.id, replies[1].id, 2)
    assert [m.id for m in rest.messages] == [replies[2].id] and not rest.has_more
    # and a reply to a reply is refused
    with pytest.raises(NotFound):
        store.append_message(
            Message(message_id_for(NOW_MS + 9000), WS, "general", "t", BOB, "x", None, replies[0].id)
        )


def test_an_edit_and_a_delete_are_compare_and_set_on_the_version(store: ChatStore) -> None:
    # Given a message, read at version 0
    seen = store.append_message(draft("one"))
    # When it is edited from version 0, Then it is at version 1; an edit from 0 again loses
    edited = store.replace_text(seen, "two", "e1")
    assert edited is not None and (edited.text, edited.version, edited.edited_at) == ("two", 1, "e1")
    assert store.replace_text(seen, "stale", "e2") is None
    # When it is deleted from version 1, Then it is a tombstone without text; deleting again loses
    tomb = store.tombstone(edited, "d1")
    assert tomb is not None and (tomb.text, tomb.version, tomb.deleted_at) == ("", 2, "d1")
    assert store.tombstone(tomb, "d2") is None and store.replace_text(tomb, "back", "e3") is None
    assert store.current_message(WS, "general", seen.id) == tomb


def test_deleting_a_reply_counts_one_fewer_on_the_parent(store: ChatStore) -> None:
    parent = store.append_message(draft("parent"))
    reply = store.append_message(
        Message(message_id_for(NOW_MS + 1000), WS, "general", "t1", BOB, "r", None, parent.id)
    )
    assert store.tombstone(reply, "d1") is not None
    counted = store.current_message(WS, "general", parent.id)
    assert counted is not None and (counted.reply_count, counted.thread_version) == (0, 2)
    (listed,) = store.thread_replies(WS, "general", parent.id, None, 10).messages
    assert listed.deleted and listed.text == ""


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


def due_items(store: ChatStore, now_ms: int) -> list[DueItem]:
    """Everything due by `now_ms`, every shard read to its end."""
    found: list[DueItem] = []
    for shard in store.due_shards():
        after = None
        while True:
            page = store.due_page(shard, now_ms, 100, after)
            found.extend(page.items)
            if page.after is None:
                break
            after = page.after
    return found


def test_due_items_are_stale_connections_and_overdue_leaves(store: ChatStore) -> None:
    # Given a connection that stops heartbeating, one that heartbeats, and a leave in its grace
    stale = connected(store, caller(BOB, "stale="), expires_at_s=NOW_S + 600)
    alive = connected(store, caller(ALICE, "alive="), expires_at_s=NOW_S + 600)
    store.touch_connection(alive.connection_id, NOW_S + 1200)
    store.subscribe(alive, "general", NOW_S + 7800)
    store.presence_remove(WS, "general", "alice", alive.connection_id, NOW_MS + 5000)
    # Then nothing is due yet; the leave is due after its grace; the stale connection after its expiry
    assert due_items(store, NOW_MS) == []
    assert due_items(store, NOW_MS + 5000) == [
        DueItem("presence", workspace=WS, channel="general", user_id="alice")
    ]
    due = due_items(store, (NOW_S + 600) * 1000)
    assert set(due) == {
        DueItem("connection", connection_id=stale.connection_id),
        DueItem("presence", workspace=WS, channel="general", user_id="alice"),
    }
    # When the leave is finished and the stale connection deleted, Then nothing is due any more
    store.finalize_leave(WS, "general", "alice", NOW_MS + 5000)
    store.delete_connection(stale.connection_id)
    assert due_items(store, (NOW_S + 600) * 1000) == []


def ids_in_one_shard(count: int) -> list[str]:
    """Connection ids that all fall into the shard of the first one."""
    shard = keys.connection_due_shard("s0=")
    return [c for c in (f"s{i}=" for i in range(10_000)) if keys.connection_due_shard(c) == shard][:count]


def test_a_due_shard_is_read_page_after_page_oldest_first(store: ChatStore) -> None:
    # Given five stale connections in one shard, due a second apart
    ids = ids_in_one_shard(5)
    for n, connection_id in enumerate(ids):
        connected(store, caller(connection_id=connection_id), expires_at_s=NOW_S - 10 + n)
    shard = keys.connection_due_shard(ids[0])
    # When the shard is read two at a time, following each page's `after`
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = store.due_page(shard, NOW_MS, 2, after)
        assert len(page.items) <= 2
        seen.extend(item.connection_id for item in page.items)
        if page.after is None:
            break
        after = page.after
    # Then every one comes back once, oldest first
    assert seen == ids
    assert set(store.due_shards()) == set(keys.all_due_shards())


def test_connection_due_reads_the_item_itself(store: ChatStore) -> None:
    # Given a connection due at its expiry
    alice = connected(store, caller(), expires_at_s=NOW_S)
    assert store.connection_due(alice.connection_id, NOW_MS) is True
    assert store.connection_due(alice.connection_id, NOW_MS - 1) is False
    # When it heartbeats, Then it is no longer due; when it is gone, neither
    store.touch_connection(alice.connection_id, NOW_S + 600)
    assert store.connection_due(alice.connection_id, NOW_MS) is False
    store.delete_connection(alice.connection_id)
    assert store.connection_due(alice.connection_id, (NOW_S + 600) * 1000) is False


def test_a_heartbeat_rewrites_the_expiry_only_when_it_moves_by_the_step(store: ChatStore) -> None:
    # Given a connection due in 10 minutes
    alice = connected(store, caller(), expires_at_s=NOW_S + 600)
    # When a heartbeat would move it by 1 minute only, Then nothing is written, yet the touch succeeds
    assert store.touch_connection(alice.connection_id, NOW_S + 660, min_step_s=120) is True
    assert store.connection_due(alice.connection_id, (NOW_S + 600) * 1000) is True
    # When one moves it by 2 minutes, Then it is written
    assert store.touch_connection(alice.connection_id, NOW_S + 720, min_step_s=120) is True
    assert store.connection_due(alice.connection_id, (NOW_S + 719) * 1000) is False
    # And a connection that is gone is still told apart
    assert store.touch_connection("gone=", NOW_S + 720, min_step_s=120) is False


# ---- reactions -----------------------------------------------------------------------------------


def _reaction(message: Message, user: User, name: str, *, added: bool = True) -> Any:
    from parley.models import ReactionChange

    return ReactionChange(WS, message.channel, message.id, user, name, added)


def _apply(store: ChatStore, change: Any, **bounds: int) -> bool:
    seen = store.reaction_state(WS, change.channel, change.message_id, change.user.id, consistent=True)
    assert seen is not None
    limits = {"max_distinct": 50, "max_mine": 20} | bounds
    return store.apply_reaction(change, seen, **limits)


def test_reactions_are_counted_per_name_with_the_readers_own(store: ChatStore) -> None:
    # Given a message, a thumbs up from alice and bob, and a party popper from bob
    message = store.append_message(draft("hi"))
    for user, name in ((ALICE, "👍"), (BOB, "👍"), (BOB, "🎉")):
        assert _apply(store, _reaction(message, user, name)) is True
    # Then each reader's state and summary show the counts, their own names and three changes
    state = store.reaction_state(WS, "general", message.id, "bob")
    assert state is not None and (state.counts, state.version, state.mine) == (
        {"👍": 2, "🎉": 1},
        3,
        frozenset({"👍", "🎉"}),
    )
    summary = store.reaction_summaries(WS, "general", "alice", message.id, message.id)[message.id]
    assert (summary.counts, summary.mine, summary.version) == ((("🎉", 1), ("👍", 2)), frozenset({"👍"}), 3)


def test_a_reaction_decided_on_a_state_that_moved_writes_nothing(store: ChatStore) -> None:
    # Given alice and bob both read the message without reactions
    message = store.append_message(draft("hi"))
    seen = store.reaction_state(WS, "general", message.id, "alice", consistent=True)
    assert seen is not None
    assert _apply(store, _reaction(message, BOB, "👍")) is True
    # When alice writes her first thumbs up as if the name were new, Then it is refused (read again)
    assert store.apply_reaction(_reaction(message, ALICE, "👍"), seen, max_distinct=50, max_mine=20) is False
    # and the same change decided on a fresh read is written
    assert _apply(store, _reaction(message, ALICE, "👍")) is True
    state = store.reaction_state(WS, "general", message.id, "alice")
    assert state is not None and state.counts == {"👍": 2} and state.version == 2


def test_the_same_reaction_twice_is_refused_by_the_store_itself(store: ChatStore) -> None:
    message = store.append_message(draft("hi"))
    change = _reaction(message, ALICE, "+1")
    seen = store.reaction_state(WS, "general", message.id, "alice", consistent=True)
    assert seen is not None
    assert store.apply_reaction(change, seen, max_distinct=50, max_mine=20) is True
    # a retry carrying the stale state must not count twice
    assert store.apply_reaction(change, seen, max_distinct=50, max_mine=20) is False
    state = store.reaction_state(WS, "general", message.id, "alice")
    assert state is not None and state.counts == {"+1": 1}


def test_the_bounds_hold_in_the_store_itself(store: ChatStore) -> None:
    message = store.append_message(draft("hi"))
    assert _apply(store, _reaction(message, ALICE, "a"), max_distinct=2, max_mine=2) is True
    assert _apply(store, _reaction(message, BOB, "b"), max_distinct=2, max_mine=2) is True
    # a third distinct name, or alice's third name, is refused even when decided on an older state
    assert _apply(store, _reaction(message, BOB, "c"), max_distinct=2, max_mine=2) is False
    assert _apply(store, _reaction(message, ALICE, "b"), max_distinct=2, max_mine=2) is True
    assert _apply(store, _reaction(message, ALICE, "a2"), max_distinct=3, max_mine=2) is False


def test_removing_the_last_reaction_keeps_the_version_and_forgets_the_name(store: ChatStore) -> None:
    message = store.append_message(draft("hi"))
    assert _apply(store, _reaction(message, ALICE, "eyes")) is True
    assert _apply(store, _reaction(message, ALICE, "eyes", added=False)) is True
    state = store.reaction_state(WS, "general", message.id, "alice")
    assert state is not None and (state.counts, state.version, state.mine) == ({}, 2, frozenset())
    summary = store.reaction_summaries(WS, "general", "alice", message.id, message.id)[message.id]
    assert (summary.counts, summary.version) == ((), 2)


def test_reactions_of_a_missing_message_read_as_none(store: ChatStore) -> None:
    assert store.reaction_state(WS, "general", "17000000000000000", "alice") is None


def test_summaries_cover_only_the_asked_range_and_channel(store: ChatStore) -> None:
    first = store.append_message(draft("one", NOW_MS))
    second = store.append_message(draft("two", NOW_MS + 10))
    third = store.append_message(draft("three", NOW_MS + 20))
    other = store.append_message(draft("elsewhere", NOW_MS + 30, channel="random"))
    for message in (first, second, third, other):
        assert _apply(store, _reaction(message, ALICE, "+1")) is True
    found = store.reaction_summaries(WS, "general", "bob", first.id, second.id)
    assert set(found) == {first.id, second.id}
    assert all(s.mine == frozenset() for s in found.values())
    # reactions never show among messages: the message pages are unchanged
    page = store.recent_messages(WS, "general", 10)
    assert [m.text for m in page.messages] == ["one", "two", "three"]
    after = store.messages_after(WS, "general", first.id, 10)
    assert [m.text for m in after.messages] == ["two", "three"]
