"""Faults through the fakes: Parley's real handlers under moto, the stream mapping played by a small
simulator of Lambda's (retry from the lowest reported failure, bisect on errors, 5 retries, then the
on-failure destination), and failures injected where the emulator cannot reach: DynamoDB throttling
and timeouts on the fan-out's subscriber Query (botocore event hooks), LimitExceeded bursts,
exceptions midway through a fan-out, connections that vanish without `$disconnect`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

from parley.notify import PostOutcome
from tests.reliability.conftest import report, scale
from tests.support.handlers import LambdaContext, load

MAX_RETRIES = 5  # template.yaml: MaximumRetryAttempts


class Mapping:
    """Lambda's DynamoDB stream mapping, reduced to what decides delivery: in order, at least once."""

    def __init__(self) -> None:
        self.dead_letters: list[list[dict[str, Any]]] = []
        self.invocations = 0
        self.errors = 0

    def run(self, records: list[dict[str, Any]]) -> None:
        segments: deque[tuple[list[dict[str, Any]], int]] = deque([(records, 0)]) if records else deque()
        while segments:
            batch, attempts = segments.popleft()
            self.invocations += 1
            try:
                response = load("fanout").handler(
                    {"Records": batch}, LambdaContext(function_name="parley-fanout")
                )
                failed = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
            except Exception:
                self.errors += 1
                failed = None
            if failed == []:
                continue
            if failed is None and len(batch) > 1:  # BisectBatchOnFunctionError: first half first
                half = len(batch) // 2
                segments.extendleft([(batch[half:], attempts), (batch[:half], attempts)])
                continue
            if failed:
                sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
                batch = batch[min(sequences.index(s) for s in failed) :]
            attempts += 1
            if attempts > MAX_RETRIES:
                self.dead_letters.append(batch)
                continue
            segments.appendleft((batch, attempts))


def deliver(parley: Any, mapping: Mapping) -> None:
    """Pump the streams until they are empty (fan-out can write: gone connections, presence)."""
    for _ in range(20):
        records = parley.pump_source.poll()
        if not records:
            return
        mapping.run(records)


def shown(client: Any) -> list[str]:
    """Message ids as a deduping client shows them; fails on a new message older than one shown."""
    seen: list[str] = []
    last: dict[str, str] = {}  # order holds per channel
    for event in client.events_of("message"):
        if event["id"] in seen:
            continue
        previous = last.get(event["channel"], "")
        assert event["id"] > previous, f"out of order: {event['id']} after {previous}"
        last[event["channel"]] = event["id"]
        seen.append(event["id"])
    return seen


def room(parley: Any, n: int) -> list[Any]:
    clients = [parley.connect(f"user{i}") for i in range(n)]
    for client in clients:
        assert client.send({"action": "join", "channel": "general"})["type"] == "joined"
    deliver(parley, Mapping())  # presence joins out of the way
    return clients


def talk(parley: Any, sender: Any, n: int, tag: str = "m") -> list[str]:
    ids = []
    for i in range(n):
        parley.clock.advance(250)  # within the rate limit
        ack = sender.send(
            {"action": "message", "channel": "general", "text": f"{tag}{i}", "clientMsgId": f"{tag}-{i}"}
        )
        assert ack is not None and ack["type"] == "ack", ack
        ids.append(ack["id"])
    return ids


def failing_queries(parley: Any, failures: list[Exception]) -> Callable[[], None]:
    """The next len(failures) DynamoDB Query calls of the layer raise those errors; returns an undo."""
    client = parley.store._state.meta.client
    pending = list(failures)

    def before_call(**_: Any) -> None:
        if pending:
            raise pending.pop(0)

    client.meta.events.register("before-call.dynamodb.Query", before_call)
    return lambda: client.meta.events.unregister("before-call.dynamodb.Query", before_call)


def throttle() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "Query"
    )


def test_throttled_and_timed_out_subscriber_queries_are_retried(parley: Any) -> None:
    # GIVEN three users in general
    alice, bob, carol = room(parley, 3)
    ids = talk(parley, alice, 6)
    # WHEN the fan-out's subscriber Query is throttled twice and times out twice
    undo = failing_queries(
        parley,
        [
            throttle(),
            ReadTimeoutError(endpoint_url="http://127.0.0.1"),
            throttle(),
            ReadTimeoutError(endpoint_url="x"),
        ],
    )
    mapping = Mapping()
    try:
        deliver(parley, mapping)
    finally:
        undo()
    # THEN every message reached everyone once, in order, after retries, and none was dead-lettered
    assert mapping.invocations >= 5
    assert mapping.dead_letters == []
    for client in (alice, bob, carol):
        assert shown(client) == ids


def test_limit_exceeded_bursts_are_retried(parley: Any) -> None:
    alice, bob, carol = room(parley, 3)
    ids = talk(parley, alice, 5)
    # GIVEN bob's posts answer LimitExceeded (after the notifier's own backoff) for a burst of 3 posts
    notifier = parley.notifier
    original = notifier.post
    burst = {"left": 3}

    def post(connection_id: str, data: str) -> PostOutcome:
        if connection_id == bob.connection_id and burst["left"] > 0:
            burst["left"] -= 1
            return PostOutcome.THROTTLED
        return original(connection_id, data)

    notifier.post = post
    mapping = Mapping()
    deliver(parley, mapping)
    # THEN bob still gets everything, once after dedupe, in order; the others too
    assert burst["left"] == 0 and mapping.dead_letters == []
    for client in (alice, bob, carol):
        assert shown(client) == ids


def test_fanout_crashing_midway_is_retried(parley: Any) -> None:
    alice, bob, carol, dave = room(parley, 4)
    ids = talk(parley, alice, 4)
    # GIVEN a fan-out invocation that raises after its second post (the process dies midway)
    notifier = parley.notifier
    original = notifier.post
    state = {"posts": 0, "crashes": 1}

    def post(connection_id: str, data: str) -> PostOutcome:
        state["posts"] += 1
        if state["posts"] > 2 and state["crashes"] > 0:
            state["crashes"] -= 1
            raise RuntimeError("the execution environment died")
        return original(connection_id, data)

    notifier.post = post
    mapping = Mapping()
    deliver(parley, mapping)
    # THEN the batch was retried (bisected), and everyone shows every message once, in order
    assert mapping.errors == 1 and mapping.dead_letters == []
    for client in (alice, bob, carol, dave):
        assert shown(client) == ids


def test_vanished_connection_is_forgotten_without_disconnect(parley: Any) -> None:
    alice, bob = room(parley, 2)
    # GIVEN bob's connection is gone (410) and his $disconnect never arrived
    parley.notifier.gone.add(bob.connection_id)
    ids = talk(parley, alice, 2)
    deliver(parley, Mapping())
    # THEN alice got her messages, bob's connection and subscription are forgotten and it was closed
    assert shown(alice) == ids
    assert parley.store.get_connection(bob.connection_id) is None
    subscribers = parley.store.subscribers("acme", "general", parley.clock.now_ms() // 1000)
    assert [s.connection_id for s in subscribers] == [alice.connection_id]
    assert bob.connection_id in parley.notifier.closed
    assert any(user == "user1" for _, _, user, _ in parley.timers.scheduled)  # his presence leave starts


def test_exhausted_retries_reach_the_dead_letters_and_rejoin_recovers(parley: Any) -> None:
    alice, bob = room(parley, 2)
    # GIVEN every post to bob fails (not throttled, not gone)
    parley.notifier.failing.add(bob.connection_id)
    ids = talk(parley, alice, 3)
    mapping = Mapping()
    deliver(parley, mapping)
    # THEN after 5 retries the records are in the on-failure destination, and alice got everything
    assert len(mapping.dead_letters) == 1
    assert len(mapping.dead_letters[0]) == 3
    assert shown(alice) == ids
    assert shown(bob) == []
    # and bob, reconnecting with `since` (he had seen nothing after joining), recovers them
    parley.notifier.failing.clear()
    again = parley.connect("user1")
    reply = again.send({"action": "join", "channel": "general"})
    assert [m["id"] for m in reply["messages"]] == ids


def test_random_faults_lose_nothing(parley: Any) -> None:
    """Seeded random mixes of throttles, failures and crashes over several channels and senders."""
    rounds = scale(3, 40)
    clients = room(parley, 5)
    for client in clients:
        assert client.send({"action": "join", "channel": "random"})["type"] == "joined"
    deliver(parley, Mapping())
    notifier = parley.notifier
    original = notifier.post
    totals = {"messages": 0, "faults": 0, "dead": 0, "invocations": 0}
    expected: dict[str, list[str]] = {"general": [], "random": []}
    for seed in range(rounds):
        rng = random.Random(seed)
        state = {"budget": rng.randint(1, 3)}  # with <= 2 Query throttles: <= 5 failures

        def post(
            connection_id: str, data: str, rng: random.Random = rng, state: dict[str, int] = state
        ) -> PostOutcome:
            if state["budget"] > 0 and rng.random() < 0.3:
                state["budget"] -= 1
                totals["faults"] += 1
                kind = rng.choice(["throttle", "fail", "crash"])
                if kind == "crash":
                    raise RuntimeError("crash")
                return PostOutcome.THROTTLED if kind == "throttle" else PostOutcome.FAILED
            return original(connection_id, data)

        for _ in range(rng.randint(2, 6)):
            sender = rng.choice(clients)
            channel = rng.choice(["general", "random"])
            parley.clock.advance(300)
            ack = sender.send(
                {
                    "action": "message",
                    "channel": channel,
                    "text": "x",
                    "clientMsgId": f"s{seed}-{totals['messages']}",
                }
            )
            assert ack is not None and ack["type"] == "ack"
            expected[channel].append(ack["id"])
            totals["messages"] += 1
        undo = failing_queries(parley, [throttle()] * rng.randint(0, 2))
        notifier.post = post
        mapping = Mapping()
        try:
            deliver(parley, mapping)
        finally:
            undo()
            notifier.post = original
        totals["dead"] += len(mapping.dead_letters)
        totals["invocations"] += mapping.invocations
    assert totals["dead"] == 0  # <= 5 failures a round: 5 retries of a segment are never all used up
    everything = sorted(expected["general"] + expected["random"])
    for client in clients:
        assert sorted(shown(client)) == everything
    report("fault-harness-random", rounds=rounds, **totals)
