"""Direct messages, mentions, read marks and unread counts, through the real handlers under moto."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from parley.store import keys
from tests.support.matrix import snapshot


def listed(client: Any) -> dict[str, dict[str, Any]]:
    reply = client.send({"action": "channels"})
    assert reply is not None and reply["type"] == "channels", reply
    return {c["id"]: c for c in reply["channels"]}


def open_dm(client: Any, *users: str) -> dict[str, Any]:
    reply = client.send({"action": "open_dm", "users": list(users)})
    assert reply is not None and reply["type"] == "dm_opened", reply
    channel: dict[str, Any] = reply["channel"]
    return channel


# ---- open_dm ---------------------------------------------------------------------------------------


def test_open_dm_returns_one_private_conversation_per_set_of_members(parley: Any) -> None:
    # Given alice, bob and carol connected to acme
    alice, bob, carol = (
        parley.connect("alice", name="Alice"),
        parley.connect("bob", name="Bob"),
        parley.connect("carol"),
    )
    # When alice opens a DM with bob and carol, and carol opens one with bob and alice (another order)
    first = open_dm(alice, "bob", "carol")
    second = open_dm(carol, "bob", "alice", "bob")
    # Then both are the same DM: a deterministic private id, its members listed
    assert first == second
    assert first["id"].startswith("dm.") and len(first["id"]) == 13
    assert first["private"] is True and first["dm"] is True
    assert first["members"] == [
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "carol", "name": "carol"},
    ]
    # and a DM of a different set is another conversation
    assert open_dm(alice, "bob")["id"] != first["id"]
    # and every member sees it in `channels`, marked as a DM
    for client in (alice, bob, carol):
        assert listed(client)[first["id"]]["dm"] is True


def test_opening_a_dm_again_writes_nothing_but_the_rate_limiter(parley: Any) -> None:
    # Given alice opened a DM with bob
    alice, _ = parley.connect("alice"), parley.connect("bob")
    open_dm(alice, "bob")
    before = snapshot(parley.aws.dynamodb)
    # When she opens it again
    open_dm(alice, "bob")
    # Then only her rate limiter's state changed
    after = snapshot(parley.aws.dynamodb)
    assert after["MessagesTable"] == before["MessagesTable"]


def test_concurrent_opens_of_one_dm_all_get_the_same_conversation(parley: Any) -> None:
    # Given alice and bob, each with four connections
    clients = [parley.connect(user) for user in ("alice", "bob") for _ in range(4)]
    # When all eight open the DM of the two at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        opened = list(pool.map(lambda c: open_dm(c, "alice", "bob"), clients))
    # Then every one got the same DM, stored once, with the two memberships
    assert len({o["id"] for o in opened}) == 1
    table = parley.aws.dynamodb.Table("MessagesTable")
    dm = opened[0]["id"]
    assert table.get_item(Key=keys.channel_key("acme", dm))["Item"]["dm"] is True
    for user in ("alice", "bob"):
        assert "Item" in table.get_item(Key=keys.member_key("acme", user, dm))


def test_a_dm_is_not_listed_for_a_non_member_nor_among_the_workspace_channels(parley: Any) -> None:
    # Given alice opened a DM with bob; mallory is in the same workspace
    alice, _, mallory = parley.connect("alice"), parley.connect("bob"), parley.connect("mallory")
    dm = open_dm(alice, "bob")["id"]
    # When mallory lists channels, Then the DM is not there
    assert set(listed(mallory)) == {"general", "random"}
    # and the workspace partition holds no DM item (listing never reads everyone's DMs)
    assert keys.channel_key("acme", dm)["PK"] == keys.channel_messages_pk("acme", dm)


def test_dm_members_can_join_post_and_read_history(parley: Any) -> None:
    # Given alice opened a DM with bob and both joined it
    alice, bob = parley.connect("alice"), parley.connect("bob")
    dm = open_dm(alice, "bob")["id"]
    assert alice.send({"action": "join", "channel": dm})["type"] == "joined"
    assert bob.send({"action": "join", "channel": dm})["type"] == "joined"
    parley.pump()
    # When alice posts there and fan-out runs
    alice.send({"action": "message", "channel": dm, "text": "psst"})
    parley.pump()
    # Then bob receives it and history shows it
    assert [m["text"] for m in bob.events_of("message")] == ["psst"]
    assert [m["text"] for m in bob.send({"action": "history", "channel": dm})["messages"]] == ["psst"]


def test_a_member_who_left_a_dm_is_a_member_again_when_opening_it(parley: Any) -> None:
    # Given bob left the DM alice opened with him
    alice, bob = parley.connect("alice"), parley.connect("bob")
    dm = open_dm(alice, "bob")["id"]
    bob.send({"action": "join", "channel": dm})
    assert bob.send({"action": "leave", "channel": dm, "membership": True})["membership"] is True
    assert dm not in listed(bob)
    # When he opens it again
    assert open_dm(bob, "alice")["id"] == dm
    # Then he is a member and may join it
    assert bob.send({"action": "join", "channel": dm})["type"] == "joined"


def test_a_dms_members_are_fixed(parley: Any) -> None:
    # Given alice opened a DM with bob; carol exists
    alice, _, _ = parley.connect("alice"), parley.connect("bob"), parley.connect("carol")
    dm = open_dm(alice, "bob")["id"]
    # When alice invites carol into it, Then she is refused
    reply = alice.send({"action": "invite", "channel": dm, "user": "carol"})
    assert reply["code"] == "forbidden", reply


# ---- mentions --------------------------------------------------------------------------------------


def test_mentions_of_workspace_users_are_stored_and_sent(parley: Any) -> None:
    # Given alice and bob joined general; carol connected once; nobody is called "dave"
    alice, bob = parley.connect("alice"), parley.connect("bob")
    parley.connect("carol")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    parley.pump()
    # When alice mentions bob (with a comma after), carol twice, dave and an e-mail address
    alice.send(
        {"action": "message", "channel": "general", "text": "@bob, @carol and @dave: mail a@carol @carol"}
    )
    parley.pump()
    # Then the message carries bob and carol, once each, in order, on the wire and in history
    (event,) = bob.events_of("message")
    assert event["mentions"] == ["bob", "carol"]
    (stored,) = alice.send({"action": "history", "channel": "general"})["messages"]
    assert stored["mentions"] == ["bob", "carol"]


def test_a_message_without_mentions_has_no_mentions_field(parley: Any) -> None:
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    alice.send({"action": "message", "channel": "general", "text": "no one here"})
    (stored,) = alice.send({"action": "history", "channel": "general"})["messages"]
    assert "mentions" not in stored


# ---- read state ------------------------------------------------------------------------------------


def _post(client: Any, channel: str, *texts: str) -> list[str]:
    return [client.send({"action": "message", "channel": channel, "text": t})["id"] for t in texts]


def test_unread_and_mentions_count_messages_after_the_read_mark(parley: Any) -> None:
    # Given alice and bob in general; alice posts three messages, one mentioning bob, twice
    alice, bob = parley.connect("alice"), parley.connect("bob")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    ids = _post(alice, "general", "one", "two @bob", "three @bob")
    parley.count()
    # When bob lists channels, Then he has three unread, two mentions
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (3, 2)
    # When he marks the first read, Then two are left, both mentions
    read = bob.send({"action": "mark_read", "channel": "general", "messageId": ids[0]})
    assert read == {
        "type": "marked_read",
        "channel": "general",
        "messageId": ids[0],
        "unread": 2,
        "mentions": 2,
    }
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (2, 2)
    # When he marks the last read, Then nothing is unread
    bob.send({"action": "mark_read", "channel": "general", "messageId": ids[2]})
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (0, 0)
    # and a message after it is unread again
    _post(alice, "general", "four")
    parley.count()
    assert listed(bob)["general"]["unread"] == 1
    # and alice's own mentions of nobody leave her mention count at 0
    assert listed(alice)["general"]["mentions"] == 0


def test_counts_converge_when_a_batch_is_delivered_twice(parley: Any) -> None:
    # Given alice posted in general, bob mentioned in one message, and the batch was counted
    alice, bob = parley.connect("alice"), parley.connect("bob")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    _post(alice, "general", "a", "b @bob")
    parley.count()
    # When the same batch comes again, and again with later records behind it (a retry after a failure)
    assert parley.count(parley.counter_batches[-1]) == {"batchItemFailures": []}
    _post(alice, "general", "c @bob")
    later = parley.counter_source.poll()
    parley.count(parley.counter_batches[-1] + later)
    parley.count(later)
    # Then every message is counted once
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (3, 2)


def test_reading_a_message_before_the_counters_count_it_leaves_nothing_unread(parley: Any) -> None:
    # Given bob has read what was counted, and alice posts two more, the second mentioning him
    alice, bob = parley.connect("alice"), parley.connect("bob")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    first = _post(alice, "general", "counted")
    parley.count()
    bob.send({"action": "mark_read", "channel": "general", "messageId": first[0]})
    ids = _post(alice, "general", "not counted yet", "nor this, @bob")
    # When he reads the newest at once, before the counters' stream batch has run
    read = bob.send({"action": "mark_read", "channel": "general", "messageId": ids[1]})
    # Then nothing is unread, then or once the counters have counted both messages
    assert (read["unread"], read["mentions"]) == (0, 0)
    parley.count()
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (0, 0)
    # and a later message is one unread, as it should be
    _post(alice, "general", "later")
    parley.count()
    assert (listed(bob)["general"]["unread"], listed(bob)["general"]["mentions"]) == (1, 0)


def test_mark_read_never_moves_back_and_repeats_write_nothing(parley: Any) -> None:
    # Given bob marked the second of two messages read
    alice, bob = parley.connect("alice"), parley.connect("bob")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    ids = _post(alice, "general", "a", "b")
    parley.count()
    bob.send({"action": "mark_read", "channel": "general", "messageId": ids[1]})
    before = snapshot(parley.aws.dynamodb)
    # When he marks the first, or the second again
    older = bob.send({"action": "mark_read", "channel": "general", "messageId": ids[0]})
    again = bob.send({"action": "mark_read", "channel": "general", "messageId": ids[1]})
    # Then the mark stays at the second, and nothing was written
    assert (
        older
        == again
        == {"type": "marked_read", "channel": "general", "messageId": ids[1], "unread": 0, "mentions": 0}
    )
    assert snapshot(parley.aws.dynamodb) == before


def test_a_read_event_reaches_the_users_other_connections_only(parley: Any) -> None:
    # Given bob has two connections and alice one, all in general
    alice, bob, bob_phone = parley.connect("alice"), parley.connect("bob"), parley.connect("bob")
    for client in (alice, bob):
        client.send({"action": "join", "channel": "general"})
    (message_id,) = _post(alice, "general", "hello")
    parley.count()
    parley.notifier.clear()
    # When bob marks it read on his first connection
    reply = bob.send({"action": "mark_read", "channel": "general", "messageId": message_id})
    # Then his phone gets the same `read` event; neither his first connection nor alice gets one
    assert bob_phone.events_of("read") == [reply | {"type": "read"}]
    assert bob.events_of("read") == [] and alice.events_of("read") == []


def test_a_dm_counts_unread_for_its_members(parley: Any) -> None:
    # Given alice opened a DM with bob and posted twice
    alice, bob = parley.connect("alice"), parley.connect("bob")
    dm = open_dm(alice, "bob")["id"]
    alice.send({"action": "join", "channel": dm})
    _post(alice, "general" if False else dm, "hi", "there")
    parley.count()
    # Then bob sees two unread in it
    assert listed(bob)[dm]["unread"] == 2


# ---- the cost of a message -------------------------------------------------------------------------


def _dynamodb_calls(parley: Any, client: Any, frame: dict[str, Any]) -> list[str]:
    """The DynamoDB operations the store makes for one frame (the tables' shared client)."""
    calls: list[str] = []
    events = parley.services.chat.store._client.meta.events

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events.register("before-call.dynamodb", record)
    try:
        reply = client.send(frame)
    finally:
        events.unregister("before-call.dynamodb", record)
    assert reply is not None and reply["type"] == "ack", reply
    return calls


def test_a_plain_message_costs_what_it_did_and_a_mention_one_batch_get(parley: Any) -> None:
    # Given alice joined general, and bob is a user of the workspace
    alice = parley.connect("alice")
    parley.connect("bob")
    alice.send({"action": "join", "channel": "general"})
    parley.clock.advance(1000)
    # When she posts a plain message, Then it costs the calls it cost before mentions existed:
    # the subscription check, the rate limiter, the head + message transaction
    plain = _dynamodb_calls(parley, alice, {"action": "message", "channel": "general", "text": "hi"})
    assert plain == ["GetItem", "PutItem", "TransactWriteItems"]
    # When a message mentions someone, Then one BatchGetItem of the directory is added
    parley.clock.advance(1000)
    mention = _dynamodb_calls(parley, alice, {"action": "message", "channel": "general", "text": "hi @bob"})
    assert sorted(mention) == sorted([*plain, "BatchGetItem"])
