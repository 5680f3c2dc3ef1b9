"""Fan-out, presence, typing, idempotency, rate limits and recovery, end to end under moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley import aws
from tests.integration.harness import joined_pair


def after_the_grace(parley: Any) -> None:
    """The presence grace passes: the timers the leave paths scheduled fire, and the fan-out runs."""
    parley.clock.advance(5_000)
    parley.fire_presence_timers()
    parley.pump()


# ---- presence -------------------------------------------------------------------------------------


def test_first_join_broadcasts_presence_join_to_members(parley: Any) -> None:
    alice = parley.connect("alice", name="Alice")
    alice.send({"action": "join", "channel": "general"})
    parley.pump()
    bob = parley.connect("bob", name="Bob")
    bob.send({"action": "join", "channel": "general"})
    parley.pump()

    diffs = alice.events_of("presence_diff")
    assert diffs[-1]["joins"] == [{"id": "bob", "name": "Bob"}] and diffs[-1]["leaves"] == []


def test_second_connection_of_a_user_broadcasts_no_join(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    bob_tab2 = parley.connect("bob", name="Bob")
    bob_tab2.send({"action": "join", "channel": "general"})
    parley.pump()
    assert alice.events_of("presence_diff") == []
    # positive control: in the same set-up, another user's first connection is broadcast as a join
    carol = parley.connect("carol", name="Carol")
    carol.send({"action": "join", "channel": "general"})
    parley.pump()
    assert [d["joins"] for d in alice.events_of("presence_diff")] == [[{"id": "carol", "name": "Carol"}]]


def test_leave_broadcasts_after_grace_via_timer(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    # When bob leaves, a timer is scheduled for the grace period; nothing is broadcast yet
    bob.send({"action": "leave", "channel": "general"})
    parley.pump()
    assert alice.events_of("presence_diff") == []
    assert [(w, c, u, d) for (w, c, u, d) in parley.timers.scheduled] == [("acme", "general", "bob", 5)]
    # When the grace has passed and the timer fires
    after_the_grace(parley)
    # Then alice sees bob leave
    assert alice.events_of("presence_diff")[-1]["leaves"] == [{"id": "bob", "name": "Bob"}]


def test_rejoin_within_grace_broadcasts_nothing(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    bob.send({"action": "leave", "channel": "general"})
    parley.clock.advance(2_000)
    bob.send({"action": "join", "channel": "general"})
    parley.clock.advance(3_500)
    parley.fire_presence_timers()
    parley.pump()
    assert alice.events_of("presence_diff") == []
    # positive control: in the same set-up, a leave with no re-join is broadcast after the grace
    bob.send({"action": "leave", "channel": "general"})
    after_the_grace(parley)
    assert [d["leaves"] for d in alice.events_of("presence_diff")] == [[{"id": "bob", "name": "Bob"}]]


def test_leave_only_after_last_connection_of_user(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    bob2 = parley.connect("bob", name="Bob")
    bob2.send({"action": "join", "channel": "general"})
    bob.disconnect()
    assert parley.timers.scheduled == []
    bob2.disconnect()
    assert len(parley.timers.scheduled) == 1
    after_the_grace(parley)
    assert alice.events_of("presence_diff")[-1]["leaves"] == [{"id": "bob", "name": "Bob"}]


def test_ttl_removal_of_presence_also_broadcasts_leave(parley: Any) -> None:
    # Given the timer message was lost: TTL is the backstop
    alice, bob = joined_pair(parley)
    bob.send({"action": "leave", "channel": "general"})
    parley.timers.scheduled.clear()
    parley.clock.advance(6_000)
    assert parley.expire_ttl() >= 1
    parley.pump()
    assert alice.events_of("presence_diff")[-1]["leaves"] == [{"id": "bob", "name": "Bob"}]


def test_join_lists_present_users_and_ignores_expired_ones(parley: Any) -> None:
    _alice, bob = joined_pair(parley)
    bob.send({"action": "leave", "channel": "general"})
    parley.clock.advance(6_000)  # bob's presence expired but TTL has not deleted it yet
    carol = parley.connect("carol")
    reply = carol.send({"action": "join", "channel": "general"})
    assert sorted(u["id"] for u in reply["presence"]) == ["alice", "carol"]


def test_sweeper_forgets_connections_without_heartbeat(parley: Any) -> None:
    from tests.support.handlers import LambdaContext, load

    alice, bob = joined_pair(parley)
    parley.clock.advance(300_000)
    alice.send({"action": "heartbeat"})
    parley.clock.advance(301_000)  # bob: no heartbeat for > 10 minutes; alice heartbeated 5 min ago
    result = load("sweeper").handler({"source": "aws.events"}, LambdaContext())
    assert result["staleConnections"] == 1
    assert parley.notifier.closed == [bob.connection_id]
    assert parley.store.get_connection(bob.connection_id) is None
    assert parley.store.get_connection(alice.connection_id) is not None
    # and bob's presence leave follows the grace, via the timer
    after_the_grace(parley)
    assert alice.events_of("presence_diff")[-1]["leaves"] == [{"id": "bob", "name": "Bob"}]


def test_sweeper_finishes_overdue_leave_when_timer_was_lost(parley: Any) -> None:
    from tests.support.handlers import LambdaContext, load

    alice, bob = joined_pair(parley)
    bob.send({"action": "leave", "channel": "general"})
    parley.timers.scheduled.clear()
    parley.clock.advance(60_000)
    assert load("sweeper").handler({}, LambdaContext())["overdueLeaves"] == 1
    parley.pump()
    assert alice.events_of("presence_diff")[-1]["leaves"] == [{"id": "bob", "name": "Bob"}]


# ---- typing ---------------------------------------------------------------------------------------


def test_typing_reaches_others_but_not_the_typist(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    assert alice.send({"action": "typing", "channel": "general"}) is None
    parley.pump()
    assert [e["user"]["id"] for e in bob.events_of("typing")] == ["alice"]
    assert alice.events_of("typing") == []


def test_typing_is_debounced_to_one_event_per_two_seconds(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    for _ in range(5):
        alice.send({"action": "typing", "channel": "general"})
        parley.clock.advance(300)
    parley.pump()
    assert len(bob.events_of("typing")) == 1
    parley.clock.advance(1_000)  # 2.5 s after the first
    alice.send({"action": "typing", "channel": "general"})
    parley.pump()
    assert len(bob.events_of("typing")) == 2


# ---- messages: batching, order, idempotency, rate limit -------------------------------------------


def test_several_events_in_one_invocation_arrive_as_one_batch_frame_in_order(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    for i in range(3):
        parley.clock.advance(10)
        alice.send({"action": "message", "channel": "general", "text": f"m{i}"})
    parley.pump()
    assert len(parley.notifier.frames[bob.connection_id]) == 1
    assert [e["text"] for e in bob.events_of("message")] == ["m0", "m1", "m2"]


def test_repeated_client_msg_id_stores_and_broadcasts_once(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    first = alice.send({"action": "message", "channel": "general", "text": "once", "clientMsgId": "k1"})
    again = alice.send({"action": "message", "channel": "general", "text": "once", "clientMsgId": "k1"})
    parley.pump()
    assert again == first
    assert [e["text"] for e in bob.events_of("message")] == ["once"]
    history = alice.send({"action": "history", "channel": "general"})
    assert [m["text"] for m in history["messages"]] == ["once"]


def test_reused_client_msg_id_with_other_text_is_a_conflict(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    alice.send({"action": "message", "channel": "general", "text": "one", "clientMsgId": "k1"})
    reply = alice.send({"action": "message", "channel": "general", "text": "two", "clientMsgId": "k1"})
    assert reply["type"] == "error" and reply["code"] == "conflict"


def test_rate_limit_holds_across_a_users_connections(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    alice2 = parley.connect("alice", name="Alice")
    alice2.send({"action": "join", "channel": "general"})
    replies = [
        (alice if i % 2 else alice2).send({"action": "message", "channel": "general", "text": f"{i}"})
        for i in range(22)
    ]
    codes = [r["type"] if r["type"] == "ack" else r["code"] for r in replies]
    assert codes[:20] == ["ack"] * 20
    assert codes[20:] == ["rate_limited"] * 2
    assert 0 < replies[20]["retryAfterMs"] <= 200
    history = alice.send({"action": "history", "channel": "general", "limit": 100})
    assert len(history["messages"]) == 20  # nothing stored for the refused ones


def test_a_message_within_the_rate_costs_the_limiter_one_write_and_no_read(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    calls: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        key = body.get("Key") or body.get("Item") or {}
        calls.append((model.name, key.get("PK", {}).get("S", "").split("#")[0]))

    client = aws.dynamodb().meta.client
    client.meta.events.register("before-call.dynamodb", record)
    try:
        for i in range(3):  # well within 5/s: each finds the limiter idle
            parley.clock.advance(1000)
            assert alice.send({"action": "message", "channel": "general", "text": f"{i}"})["type"] == "ack"
    finally:
        client.meta.events.unregister("before-call.dynamodb", record)
    assert [c for c in calls if c[1] == "RATE"] == [("PutItem", "RATE")] * 3


def test_thread_reply_needs_a_message_of_the_same_channel(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    root = alice.send({"action": "message", "channel": "general", "text": "root"})
    ok = alice.send({"action": "message", "channel": "general", "text": "reply", "threadId": root["id"]})
    alice.send({"action": "join", "channel": "random"})
    bad = alice.send({"action": "message", "channel": "random", "text": "x", "threadId": root["id"]})
    assert ok["type"] == "ack"
    assert bad["code"] == "not_found"


def test_join_with_since_recovers_missed_messages(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    first = alice.send({"action": "message", "channel": "general", "text": "seen"})
    bob.disconnect()
    for i in range(3):
        parley.clock.advance(10)
        alice.send({"action": "message", "channel": "general", "text": f"missed{i}"})
    bob_again = parley.connect("bob", name="Bob")
    reply = bob_again.send({"action": "join", "channel": "general", "since": first["id"]})
    assert reply["recovered"] is True
    assert [m["text"] for m in reply["messages"]] == ["missed0", "missed1", "missed2"]


def test_join_with_since_reports_unrecovered_gap_over_100(parley: Any) -> None:
    alice, _ = joined_pair(parley)
    first = alice.send({"action": "message", "channel": "general", "text": "seen"})
    for i in range(101):
        parley.clock.advance(250)
        alice.send({"action": "message", "channel": "general", "text": f"m{i}"})
    late = parley.connect("bob")
    reply = late.send({"action": "join", "channel": "general", "since": first["id"]})
    assert reply["recovered"] is False
    assert len(reply["messages"]) == 100 and reply["messages"][-1]["text"] == "m100"


# ---- fan-out failures -----------------------------------------------------------------------------


def test_gone_connection_is_cleaned_up_and_is_not_a_failure(parley: Any) -> None:
    alice, bob = joined_pair(parley)
    parley.notifier.gone.add(bob.connection_id)
    alice.send({"action": "message", "channel": "general", "text": "hello?"})
    parley.pump()
    assert parley.fanout_responses[-1] == {"batchItemFailures": []}
    assert parley.store.get_connection(bob.connection_id) is None
    assert parley.store.get_connection(alice.connection_id) is not None
    assert parley.store.subscribers("acme", "general", parley.clock.now_ms() // 1000)[0].connection_id == (
        alice.connection_id
    )


@pytest.mark.parametrize("fault", ["throttled", "failing"])
def test_undelivered_records_are_reported_as_batch_item_failures(parley: Any, fault: str) -> None:
    alice, bob = joined_pair(parley)
    getattr(parley.notifier, fault).add(bob.connection_id)
    alice.send({"action": "message", "channel": "general", "text": "retry me"})
    records = parley.pump()
    failures = parley.fanout_responses[-1]["batchItemFailures"]
    assert [f["itemIdentifier"] for f in failures] == [records[0]["dynamodb"]["SequenceNumber"]]


def test_join_on_a_connection_forgotten_as_gone_registers_it_again(parley: Any) -> None:
    # Given the server forgot alice's connection (a 410 that was not true), but she is still talking
    alice = parley.connect("alice")
    parley.services.chat.forget_gone(alice.connection_id, [])
    assert parley.store.get_connection(alice.connection_id) is None
    # When she joins, Then the join works and the connection is known again
    reply = alice.send({"action": "join", "channel": "general"})
    assert reply["type"] == "joined"
    assert parley.store.get_connection(alice.connection_id) is not None


def test_a_join_that_conflicts_with_another_of_the_same_user_is_tried_again(
    parley: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given alice's other connection is joining at the same moment: DynamoDB cancels one transaction
    from botocore.exceptions import ClientError

    client = parley.store._client
    real = client.transact_write_items
    cancelled: list[int] = []

    def conflicting_once(**kwargs: Any) -> Any:
        if not cancelled:
            cancelled.append(1)
            reasons = [{"Code": "None"}, {"Code": "None"}, {"Code": "TransactionConflict"}]
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}}
            raise ClientError({**error, "CancellationReasons": reasons}, "TransactWriteItems")  # type: ignore[typeddict-item]
        return real(**kwargs)

    alice = parley.connect("alice")
    monkeypatch.setattr(client, "transact_write_items", conflicting_once)
    # When she joins, Then the join goes through on the second try: subscribed and present
    reply = alice.send({"action": "join", "channel": "general"})
    assert cancelled and reply["type"] == "joined"
    assert [u["id"] for u in reply["presence"]] == ["alice"]
    assert "general" in parley.store.get_connection(alice.connection_id).channels
    parley.pump()
    bob = parley.connect("bob")
    bob.send({"action": "join", "channel": "general"})
    assert {u["id"] for u in bob.send({"action": "presence", "channel": "general"})["users"]} == {
        "alice",
        "bob",
    }
