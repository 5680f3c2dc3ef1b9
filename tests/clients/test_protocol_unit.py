"""parley_client's protocol module without a network: decoding, reply matching, limits, backoff; and
the client's knowledge of the protocol kept equal to Parley's (protocol.py)."""

from __future__ import annotations

import pytest

from parley import protocol as server
from parley_client import protocol
from tests.unit.test_protocol_doc import ENCODERS


def test_a_batch_is_unpacked_into_its_events_in_order():
    raw = '{"type":"batch","events":[{"type":"message","id":"1"},{"type":"typing","id":"t"}]}'
    assert protocol.decode(raw) == [{"type": "message", "id": "1"}, {"type": "typing", "id": "t"}]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"message": "Forbidden", "connectionId": "c="}',
            {"type": "gateway", "message": "Forbidden", "connectionId": "c="},
        ),
        ("not json", {"type": "gateway", "message": "not json"}),
        ("[1, 2]", {"type": "gateway", "message": "[1, 2]"}),
    ],
)
def test_what_is_not_a_typed_object_becomes_a_gateway_frame(raw, expected):
    assert protocol.decode(raw) == [expected]


def test_a_reply_answers_its_action_and_an_ack_its_own_client_msg_id_only():
    joined = {"type": "joined", "channel": "general"}
    assert protocol.answers(joined, "join", "joined")
    assert not protocol.answers(joined, "history", "history")
    ack = {"type": "ack", "clientMsgId": "c-1", "id": "1", "ts": "t"}
    assert protocol.answers(ack, "message", "ack", "c-1")
    assert not protocol.answers(ack, "message", "ack", "c-2")  # a late ack of an earlier message
    # errors answer the action they name, or any request when they name none ($default's)
    assert protocol.answers({"type": "error", "action": "join"}, "join", "joined")
    assert not protocol.answers({"type": "error", "action": "typing"}, "join", "joined")
    assert protocol.answers({"type": "error", "code": "unknown_action"}, "shout", None)
    assert protocol.answers({"type": "gateway", "message": "Internal server error"}, "join", "joined")


def test_an_unknown_action_is_answered_by_an_unknown_type_never_by_a_known_reply_or_event():
    assert protocol.answers({"type": "shouted"}, "shout", None)
    assert not protocol.answers({"type": "heartbeat", "ts": "t"}, "shout", None)
    assert not protocol.answers({"type": "message", "id": "1"}, "shout", None)


def test_text_limits_are_the_servers():
    assert (protocol.TEXT_MAX, protocol.TEXT_MAX_BYTES) == (server.MAX_TEXT, server.MAX_TEXT_BYTES)
    assert protocol.CLIENT_MSG_ID_MAX == server.MAX_CLIENT_MSG_ID
    assert protocol.text_problem("😀" * 4000) is None  # code points, as the server counts
    assert protocol.text_problem("😀" * 4001) is not None
    assert protocol.text_problem("\x01" * 3000) is not None  # 6 bytes each as JSON escapes
    assert protocol.text_bytes("é\n") == server.text_bytes("é\n")
    assert protocol.text_problem("   ") is not None


def test_backoff_grows_to_its_cap_with_half_of_it_random():
    assert protocol.backoff_delay(1, base_s=0.5, rand=lambda: 0.0) == 0.25
    assert protocol.backoff_delay(1, base_s=0.5, rand=lambda: 1.0) == 0.5
    assert protocol.backoff_delay(4, base_s=0.5, rand=lambda: 1.0) == 4.0
    assert protocol.backoff_delay(30, base_s=0.5, cap_s=30, rand=lambda: 1.0) == 30


def test_seen_ids_forget_the_oldest_beyond_their_bound():
    seen = protocol.SeenIds(2)
    assert [seen.add(i) for i in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]


def test_the_token_is_added_to_the_query_string_escaped():
    assert protocol.with_token("ws://h/prod", "a.b+c") == "ws://h/prod?token=a.b%2Bc"
    assert protocol.with_token("ws://h/prod?x=1", "t") == "ws://h/prod?x=1&token=t"


def test_the_client_knows_every_action_and_reply_of_protocol_py():
    # every action of protocol.py (the tests' REPLY is this map; test_protocol_doc checks it against the docs)
    assert set(protocol.REPLIES) == set(server.FRAMES)
    replies = {encode()["type"] for name, encode in ENCODERS.items() if not name.endswith("_event")}
    assert protocol.reply_types() == replies
    events = {encode()["type"] for name, encode in ENCODERS.items() if name.endswith("_event")}
    assert events == protocol.EVENT_TYPES
