"""Recovery without trusting stream order: DynamoDB may interleave the stream records of different
transactions, so a lower message id can reach a client after a higher one. moto's stream follows
commit order, so these tests hand the fan-out the records out of order themselves."""

from __future__ import annotations

from typing import Any

from parley import protocol
from tests.integration.harness import joined_pair
from tests.support.handlers import LambdaContext, load


def _fan_out(records: list[dict[str, Any]]) -> None:
    response = load("fanout").handler({"Records": records}, LambdaContext(function_name="parley-fanout"))
    assert response == {"batchItemFailures": []}


def _message_record(records: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    (record,) = [r for r in records if r["dynamodb"].get("NewImage", {}).get("id", {}).get("S") == message_id]
    return record


def test_a_lower_id_delivered_after_a_higher_one_is_not_lost_across_a_reconnect(parley: Any) -> None:
    # Given bob posts two messages, and the stream hands the fan-out the second one's record first
    alice, bob = joined_pair(parley)
    first = bob.send({"action": "message", "channel": "general", "text": "one", "clientMsgId": "o-1"})
    parley.clock.advance(5)
    second = bob.send({"action": "message", "channel": "general", "text": "two", "clientMsgId": "o-2"})
    assert first["id"] < second["id"]
    records = parley.pump_source.poll()
    _fan_out([_message_record(records, second["id"])])
    assert [e["id"] for e in alice.events_of("message")] == [second["id"]]
    # When alice's connection drops before the first one's record is delivered, and she re-joins with
    # since = the highest id she saw
    alice.disconnect()
    _fan_out([_message_record(records, first["id"])])
    again = parley.connect("alice")
    reply = again.send({"action": "join", "channel": "general", "since": second["id"]})
    # Then the message she never received is in the recovery, and recovery is complete
    assert reply is not None
    assert first["id"] in [m["id"] for m in reply["messages"]]
    assert reply["recovered"] is True


def test_a_re_join_repeats_only_the_messages_just_before_since(parley: Any) -> None:
    # Given a long-past message, then a burst longer than the overlap, then the one alice saw last
    alice, _ = joined_pair(parley)
    old = alice.send({"action": "message", "channel": "general", "text": "old"})
    parley.clock.advance(protocol.RECOVER_OVERLAP_MS + 1_000)
    burst = []
    for i in range(protocol.RECOVER_OVERLAP + 5):
        parley.clock.advance(250)  # within the rate limit, and all of it inside the overlap
        burst.append(alice.send({"action": "message", "channel": "general", "text": f"b{i}"}))
    last = burst[-1]
    parley.clock.advance(10)
    missed = alice.send({"action": "message", "channel": "general", "text": "missed"})
    # When bob re-joins with since = the last of the burst
    reply = parley.connect("bob").send({"action": "join", "channel": "general", "since": last["id"]})
    # Then he gets what he missed, after at most RECOVER_OVERLAP messages of the overlap, none from
    # before it, and not `since` itself
    assert reply is not None
    ids = [m["id"] for m in reply["messages"]]
    assert ids[-1] == missed["id"] and ids == sorted(ids)
    repeated = ids[:-1]
    assert len(repeated) == protocol.RECOVER_OVERLAP
    assert old["id"] not in ids and last["id"] not in ids
    assert repeated == [b["id"] for b in burst[-protocol.RECOVER_OVERLAP - 1 : -1]]
