"""Wire protocol v1: client frames are parsed strictly; server frames have exactly the documented shapes."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parley import protocol
from parley.errors import BadRequest, ErrorCode
from parley.models import Channel, ChannelListing, Message, User

MSG_ID = "17900000000000001"
OTHER_ID = "17900000000000002"
ALICE = User("alice", "Alice")


def body(**fields: Any) -> str:
    return json.dumps(fields)


def refused(raw: str | None, model: type[protocol.Frame]) -> str:
    """The BadRequest message for a frame that must be refused."""
    with pytest.raises(BadRequest) as caught:
        protocol.parse_frame(raw, model)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    return caught.value.message


def message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "id": MSG_ID,
        "workspace": "acme",
        "channel": "general",
        "ts": "2026-09-21T14:13:20.000Z",
        "user": ALICE,
        "text": "hi",
    }
    fields.update(overrides)
    return Message(**fields)


# ---- the frame table -----------------------------------------------------------------------------


def test_every_action_maps_to_the_model_whose_action_literal_it_is():
    for action, model in protocol.FRAMES.items():
        assert get_args(model.model_fields["action"].annotation) == (action,)


def test_frames_are_immutable():
    frame = protocol.parse_frame(body(action="join", channel="general"), protocol.JoinFrame)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is an implementation detail
        frame.channel = "random"  # type: ignore[misc]


# ---- bodies that are not JSON objects ------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "not json", "{", "[]", "1", '"join"', "null", "[" * 100_000])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(raw):
    assert refused(raw, protocol.HeartbeatFrame)


def test_a_missing_action_is_named():
    assert refused(body(channel="general"), protocol.JoinFrame).startswith("action:")


def test_a_frame_for_another_action_is_refused_naming_action():
    assert refused(body(action="leave", channel="general"), protocol.JoinFrame).startswith("action:")


# ---- strict types: nothing is coerced --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        (protocol.JoinFrame, {"action": "join", "channel": 1}, "channel"),
        (protocol.JoinFrame, {"action": "join", "channel": ["general"]}, "channel"),
        (protocol.JoinFrame, {"action": "join", "channel": "general", "since": int(MSG_ID)}, "since"),
        (protocol.MessageFrame, {"action": "message", "channel": "general", "text": 42}, "text"),
        (
            protocol.MessageFrame,
            {"action": "message", "channel": "general", "text": "hi", "clientMsgId": 7},
            "clientMsgId",
        ),
        (
            protocol.MessageFrame,
            {"action": "message", "channel": "general", "text": "hi", "threadId": int(MSG_ID)},
            "threadId",
        ),
        (protocol.HistoryFrame, {"action": "history", "channel": "general", "limit": "10"}, "limit"),
        (protocol.HistoryFrame, {"action": "history", "channel": "general", "limit": 10.0}, "limit"),
        (protocol.HistoryFrame, {"action": "history", "channel": "general", "limit": True}, "limit"),
        (protocol.HistoryFrame, {"action": "history", "channel": "general", "before": 1}, "before"),
        (protocol.PresenceFrame, {"action": "presence", "channel": "general", "limit": "10"}, "limit"),
        (protocol.PresenceFrame, {"action": "presence", "channel": "general", "limit": 10.0}, "limit"),
        (protocol.PresenceFrame, {"action": "presence", "channel": "general", "limit": True}, "limit"),
        (protocol.PresenceFrame, {"action": "presence", "channel": "general", "after": 1}, "after"),
        (protocol.PresenceFrame, {"action": "presence", "channel": "general", "after": ["bob"]}, "after"),
        (protocol.CreateChannelFrame, {"action": "create_channel", "name": "x", "private": 1}, "private"),
        (
            protocol.CreateChannelFrame,
            {"action": "create_channel", "name": "x", "private": "true"},
            "private",
        ),
        (protocol.InviteFrame, {"action": "invite", "channel": "general", "user": 5}, "user"),
        (protocol.HeartbeatFrame, {"action": 1}, "action"),
    ],
)
def test_a_value_of_the_wrong_type_is_not_coerced(model, fields, field):
    assert refused(json.dumps(fields), model).startswith(f"{field}:")


def test_nan_is_not_a_limit():
    raw = '{"action":"history","channel":"general","limit":NaN}'
    assert refused(raw, protocol.HistoryFrame).startswith("limit:")


def test_unknown_fields_are_ignored():
    raw = body(action="join", channel="general", userId="mallory", workspace="other", extra={"x": 1})
    frame = protocol.parse_frame(raw, protocol.JoinFrame)
    assert frame == protocol.JoinFrame(action="join", channel="general")
    assert not hasattr(frame, "userId")


def test_snake_case_spellings_of_wire_fields_are_unknown_fields():
    raw = body(action="message", channel="general", text="hi", client_msg_id="c1", thread_id=MSG_ID)
    frame = protocol.parse_frame(raw, protocol.MessageFrame)
    assert frame.client_msg_id is None
    assert frame.thread_id is None


def test_several_bad_fields_are_all_named():
    raw = body(action="message", channel=1, text=2, clientMsgId=3)
    reason = refused(raw, protocol.MessageFrame)
    assert all(name in reason for name in ("channel:", "text:", "clientMsgId:"))


# ---- limits --------------------------------------------------------------------------------------


def message_body(**extra: Any) -> str:
    return body(action="message", channel="general", **{"text": "hi", **extra})


@pytest.mark.parametrize("text", ["x", "x" * protocol.MAX_TEXT, "\U0001f600" * protocol.MAX_TEXT, "a\nb\tc"])
def test_text_of_1_to_4000_characters_is_accepted(text):
    assert protocol.parse_frame(message_body(text=text), protocol.MessageFrame).text == text


@pytest.mark.parametrize("text", ["", "x" * (protocol.MAX_TEXT + 1), "\U0001f600" * (protocol.MAX_TEXT + 1)])
def test_empty_or_too_long_text_is_refused(text):
    assert refused(message_body(text=text), protocol.MessageFrame).startswith("text:")


def test_text_is_limited_in_bytes_as_sent_not_only_in_characters():
    # Given texts of at most 4000 characters whose UTF-8 inside a JSON string is over 16,000 bytes
    control = "\x01" * protocol.MAX_TEXT  # each sent as \u0001: 6 bytes
    mixed = "\x01" * 100 + "\U0001f600" * 3900  # 600 bytes, then 15,600
    # When they are parsed, Then each is refused naming the text and its byte limit
    for text in (control, mixed):
        assert protocol.text_bytes(text) > protocol.MAX_TEXT_BYTES
        reason = refused(message_body(text=text), protocol.MessageFrame)
        assert reason.startswith("text:") and f"{protocol.MAX_TEXT_BYTES} bytes" in reason


def test_a_text_of_exactly_the_byte_limit_is_accepted():
    # Given 4000 emoji (16,000 bytes) and 8000 bytes of newlines sent as \n
    for text in ("\U0001f600" * protocol.MAX_TEXT, "\n" * (protocol.MAX_TEXT_BYTES // 2 // 2)):
        # Then they are within both limits
        assert protocol.parse_frame(message_body(text=text), protocol.MessageFrame).text == text
    assert protocol.text_bytes("\U0001f600" * protocol.MAX_TEXT) == protocol.MAX_TEXT_BYTES


def test_the_length_limit_message_speaks_of_characters():
    reason = refused(message_body(text="x" * (protocol.MAX_TEXT + 1)), protocol.MessageFrame)
    assert "4000 characters" in reason


@pytest.mark.parametrize("client_msg_id", ["c", "c" * protocol.MAX_CLIENT_MSG_ID])
def test_client_msg_id_of_1_to_64_characters_is_accepted(client_msg_id):
    frame = protocol.parse_frame(message_body(clientMsgId=client_msg_id), protocol.MessageFrame)
    assert frame.client_msg_id == client_msg_id


@pytest.mark.parametrize("client_msg_id", ["", "c" * (protocol.MAX_CLIENT_MSG_ID + 1)])
def test_empty_or_too_long_client_msg_id_is_refused(client_msg_id):
    assert refused(message_body(clientMsgId=client_msg_id), protocol.MessageFrame).startswith("clientMsgId:")


def test_optional_message_fields_default_to_none():
    frame = protocol.parse_frame(message_body(), protocol.MessageFrame)
    assert (frame.client_msg_id, frame.thread_id) == (None, None)


def test_thread_id_is_a_message_id():
    assert protocol.parse_frame(message_body(threadId=MSG_ID), protocol.MessageFrame).thread_id == MSG_ID


@pytest.mark.parametrize("name", ["general", "a", "0", "x" * 80, "dev-ops_2", "-", "_"])
def test_channel_names_matching_the_pattern_are_accepted(name):
    assert (
        protocol.parse_frame(body(action="create_channel", name=name), protocol.CreateChannelFrame).name
        == name
    )


@pytest.mark.parametrize(
    "name", ["", "x" * 81, "General", "gen eral", "gen.eral", "général", "general\n", "\ngeneral", "gen#x"]
)
def test_channel_names_outside_the_pattern_are_refused(name):
    assert refused(body(action="create_channel", name=name), protocol.CreateChannelFrame).startswith("name:")
    assert refused(body(action="join", channel=name), protocol.JoinFrame).startswith("channel:")


def test_create_channel_is_public_unless_asked():
    frame = protocol.parse_frame(body(action="create_channel", name="x"), protocol.CreateChannelFrame)
    assert frame.private is False
    frame = protocol.parse_frame(
        body(action="create_channel", name="x", private=True), protocol.CreateChannelFrame
    )
    assert frame.private is True


# The paged actions: (action, frame model, greatest limit).
PAGED = [
    ("history", protocol.HistoryFrame, protocol.HISTORY_MAX),
    ("presence", protocol.PresenceFrame, protocol.PRESENCE_MAX),
]


@pytest.mark.parametrize(
    ("action", "model", "limit"), [(a, m, limit) for a, m, top in PAGED for limit in (1, 50, top)]
)
def test_a_page_limit_of_1_to_100_is_accepted(action, model, limit):
    frame = protocol.parse_frame(body(action=action, channel="general", limit=limit), model)
    assert frame.limit == limit


@pytest.mark.parametrize(
    ("action", "model", "limit"), [(a, m, limit) for a, m, top in PAGED for limit in (0, -1, top + 1, 10**30)]
)
def test_a_page_limit_outside_1_to_100_is_refused(action, model, limit):
    raw = body(action=action, channel="general", limit=limit)
    assert refused(raw, model).startswith("limit:")


def test_history_defaults_to_50_without_a_cursor():
    frame = protocol.parse_frame(body(action="history", channel="general"), protocol.HistoryFrame)
    assert (frame.limit, frame.before) == (protocol.HISTORY_DEFAULT, None)
    assert protocol.HISTORY_DEFAULT == 50


def test_presence_defaults_to_a_full_page_from_the_start():
    frame = protocol.parse_frame(body(action="presence", channel="general"), protocol.PresenceFrame)
    assert (frame.limit, frame.after) == (protocol.PRESENCE_MAX, None)
    assert protocol.PRESENCE_MAX == protocol.JOIN_PRESENCE_MAX == 100


@pytest.mark.parametrize("after", ["", "u" * 129, "bob smith", "bob#1", "bob\n"])
def test_a_presence_cursor_must_be_a_user_id(after):
    raw = body(action="presence", channel="general", after=after)
    assert refused(raw, protocol.PresenceFrame).startswith("after:")


@pytest.mark.parametrize(
    "cursor", ["1790000000000000", "179000000000000012", "1790000000000000x", "\uff11" * 17, ""]
)
def test_message_id_fields_must_be_17_ascii_digits(cursor):
    assert refused(body(action="join", channel="general", since=cursor), protocol.JoinFrame).startswith(
        "since:"
    )
    raw = body(action="history", channel="general", before=cursor)
    assert refused(raw, protocol.HistoryFrame).startswith("before:")
    assert refused(message_body(threadId=cursor), protocol.MessageFrame).startswith("threadId:")


@pytest.mark.parametrize("user", ["bob", "auth0|123", "u" * 128, "名前"])
def test_invitee_ids_are_accepted(user):
    frame = protocol.parse_frame(body(action="invite", channel="general", user=user), protocol.InviteFrame)
    assert frame.user == user


@pytest.mark.parametrize("user", ["", "u" * 129, "bob smith", "bob#1", "bob\n"])
def test_bad_invitee_ids_are_refused(user):
    raw = body(action="invite", channel="general", user=user)
    assert refused(raw, protocol.InviteFrame).startswith("user:")


# ---- lone surrogates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "model", "field"),
    [
        ('{"action":"message","channel":"general","text":"hi \\ud800"}', protocol.MessageFrame, "text"),
        ('{"action":"message","channel":"general","text":"\\udc00 x"}', protocol.MessageFrame, "text"),
        (
            '{"action":"message","channel":"general","text":"hi","clientMsgId":"\\ud83d"}',
            protocol.MessageFrame,
            "clientMsgId",
        ),
        ('{"action":"invite","channel":"general","user":"b\\ud800b"}', protocol.InviteFrame, "user"),
        ('{"action":"join","channel":"\\ud800"}', protocol.JoinFrame, "channel"),
        ('{"action":"presence","channel":"general","after":"\\ud800"}', protocol.PresenceFrame, "after"),
    ],
)
def test_lone_surrogates_are_refused(raw, model, field):
    assert refused(raw, model).startswith(f"{field}:")


def test_the_lone_surrogate_message_says_why():
    reason = refused('{"action":"message","channel":"general","text":"\\ud800"}', protocol.MessageFrame)
    assert "surrogate" in reason


def test_a_surrogate_pair_is_one_valid_character():
    raw = '{"action":"message","channel":"general","text":"\\ud83d\\ude00"}'
    assert protocol.parse_frame(raw, protocol.MessageFrame).text == "\U0001f600"


@given(
    st.text(min_size=1, max_size=protocol.MAX_TEXT).filter(
        lambda t: protocol.text_bytes(t) <= protocol.MAX_TEXT_BYTES
    )
)
def test_any_valid_unicode_text_within_the_limit_round_trips(text):
    frame = protocol.parse_frame(message_body(text=text), protocol.MessageFrame)
    assert frame.text == text


# ---- frames Parley sends -------------------------------------------------------------------------


def test_a_message_without_optional_fields_has_exactly_the_required_keys():
    assert protocol.message_wire(message()) == {
        "id": MSG_ID,
        "channel": "general",
        "ts": "2026-09-21T14:13:20.000Z",
        "user": {"id": "alice", "name": "Alice"},
        "text": "hi",
    }


def test_a_message_carries_client_msg_id_and_thread_id_when_set():
    wire = protocol.message_wire(message(client_msg_id="c1", thread_id=OTHER_ID))
    assert wire["clientMsgId"] == "c1"
    assert wire["threadId"] == OTHER_ID
    assert "workspace" not in wire


def test_joined():
    frame = protocol.joined("general", [message()], False, [ALICE, User("bob", "bob")], presence_more=True)
    assert frame == {
        "type": "joined",
        "channel": "general",
        "messages": [protocol.message_wire(message())],
        "recovered": False,
        "presence": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "bob"}],
        "presenceMore": True,
    }


def test_presence_page_names_the_last_user_as_the_next_cursor():
    assert protocol.presence("general", [ALICE, User("bob", "Bob")], True) == {
        "type": "presence",
        "channel": "general",
        "users": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}],
        "next": "bob",
    }


def test_the_last_presence_page_has_no_next_cursor():
    assert protocol.presence("general", [ALICE], False)["next"] is None
    assert '"next":null' in protocol.encode(protocol.presence("general", [], False))


def test_left():
    assert protocol.left("general") == {"type": "left", "channel": "general"}


def test_ack():
    frame = protocol.ack(message(client_msg_id="c1"))
    assert frame == {"type": "ack", "clientMsgId": "c1", "id": MSG_ID, "ts": "2026-09-21T14:13:20.000Z"}


def test_ack_without_client_msg_id_says_null():
    assert protocol.ack(message())["clientMsgId"] is None
    assert '"clientMsgId":null' in protocol.encode(protocol.ack(message()))


def test_history():
    assert protocol.history("general", [message()], True) == {
        "type": "history",
        "channel": "general",
        "messages": [protocol.message_wire(message())],
        "hasMore": True,
    }


def test_heartbeat():
    assert protocol.heartbeat("2026-09-21T14:13:20.000Z") == {
        "type": "heartbeat",
        "ts": "2026-09-21T14:13:20.000Z",
    }


def test_channel_created():
    frame = protocol.channel_created(Channel("acme", "dev", True, "alice"))
    assert frame == {
        "type": "channel_created",
        "channel": {"id": "dev", "name": "dev", "private": True, "invite": "members"},
    }


def test_invited():
    assert protocol.invited("dev", "bob") == {"type": "invited", "channel": "dev", "user": "bob"}


def test_channels():
    listings = [
        ChannelListing(Channel("acme", "general", False, ""), True),
        ChannelListing(Channel("acme", "dev", True, "alice"), True),
        ChannelListing(Channel("acme", "random", False, ""), False),
    ]
    assert protocol.channels(listings) == {
        "type": "channels",
        "channels": [
            {"id": "general", "name": "general", "private": False, "invite": "members", "member": True},
            {"id": "dev", "name": "dev", "private": True, "invite": "members", "member": True},
            {"id": "random", "name": "random", "private": False, "invite": "members", "member": False},
        ],
        "next": None,
    }


def test_message_event_is_the_message_with_a_type():
    assert protocol.message_event(message()) == {"type": "message", **protocol.message_wire(message())}


def test_typing_event():
    assert protocol.typing_event("e1", "general", ALICE) == {
        "type": "typing",
        "id": "e1",
        "channel": "general",
        "user": {"id": "alice", "name": "Alice"},
    }


def test_presence_diff_event():
    frame = protocol.presence_diff_event("p1", "general", [ALICE], [User("bob", "Bob")])
    assert frame == {
        "type": "presence_diff",
        "id": "p1",
        "channel": "general",
        "joins": [{"id": "alice", "name": "Alice"}],
        "leaves": [{"id": "bob", "name": "Bob"}],
    }


def test_an_error_has_code_message_and_request_id():
    frame = protocol.error(ErrorCode.NOT_FOUND, "no channel 'x'", request_id="r1")
    assert frame == {"type": "error", "code": "not_found", "message": "no channel 'x'", "requestId": "r1"}


def test_an_error_names_the_action_and_retry_delay_when_given():
    frame = protocol.error(
        ErrorCode.RATE_LIMITED, "slow down", request_id="r1", action="message", retry_after_ms=200
    )
    assert frame == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
        "action": "message",
        "retryAfterMs": 200,
        "requestId": "r1",
    }


def test_encode_is_compact_utf8_json():
    encoded = protocol.encode(protocol.message_event(message(text='héllo \U0001f600 "q" </script>')))
    assert ": " not in encoded
    assert ", " not in encoded
    assert "\U0001f600" in encoded
    assert json.loads(encoded)["text"] == 'héllo \U0001f600 "q" </script>'


def test_batch_frame_is_valid_json_holding_the_events_in_order():
    events = [
        protocol.message_event(message(text='tricky "}]{ text')),
        protocol.typing_event("e1", "general", ALICE),
        protocol.presence_diff_event("p1", "general", [], [ALICE]),
    ]
    frame = json.loads(protocol.batch_frame([protocol.encode(e) for e in events]))
    assert frame == {"type": "batch", "events": events}


@given(st.lists(st.text(), max_size=5))
def test_batch_frame_of_any_texts_is_valid_json(texts):
    events = [protocol.message_event(message(text=t)) for t in texts]
    assert json.loads(protocol.batch_frame([protocol.encode(e) for e in events]))["events"] == events
