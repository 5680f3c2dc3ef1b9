"""Malformed frames through the real route handlers under moto: a precise error, never `internal`, no write.

One world is shared by the module (building one costs ~0.4 s); every refusal compares all three tables
before and after, so what earlier tests stored does not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.matrix import assert_error_frame, send, shared_parley, snapshot

MAX_TEXT = 4000
VALID_ID = "17900000000000001"
UNKNOWN_ID = "17000000000000000"  # well-formed, but no such message

VALID: dict[str, dict[str, Any]] = {
    "join": {"action": "join", "channel": "general"},
    "leave": {"action": "leave", "channel": "general"},
    "message": {"action": "message", "channel": "general", "text": "hi"},
    "typing": {"action": "typing", "channel": "general"},
    "history": {"action": "history", "channel": "general"},
    "presence": {"action": "presence", "channel": "general"},
    "create_channel": {"action": "create_channel", "name": "brand-new"},
    "invite": {"action": "invite", "channel": "general", "user": "bob"},
    "react": {"action": "react", "channel": "general", "messageId": VALID_ID, "name": "+1"},
    "edit": {"action": "edit", "channel": "general", "messageId": UNKNOWN_ID, "text": "fixed"},
    "delete": {"action": "delete", "channel": "general", "messageId": UNKNOWN_ID},
    "thread": {"action": "thread", "channel": "general", "threadId": UNKNOWN_ID},
    "open_dm": {"action": "open_dm", "users": ["bob"]},
    "mark_read": {"action": "mark_read", "channel": "general", "messageId": VALID_ID},
}
REQUIRED = {
    "join": ["channel"],
    "leave": ["channel"],
    "message": ["channel", "text"],
    "typing": ["channel"],
    "history": ["channel"],
    "presence": ["channel"],
    "create_channel": ["name"],
    "invite": ["channel", "user"],
    "react": ["channel", "messageId", "name"],
    "edit": ["channel", "messageId", "text"],
    "delete": ["channel", "messageId"],
    "thread": ["channel", "threadId"],
    "mark_read": ["channel", "messageId"],
}
OPTIONAL_STRINGS = {
    "join": ["since"],
    "message": ["clientMsgId", "threadId"],
    "history": ["before"],
    "presence": ["after"],
    "leave": ["user"],
    "thread": ["after"],
}

NOT_A_STRING: dict[str, Any] = {
    "number": 5,
    "float": 1.5,
    "bool": True,
    "null": None,
    "list": ["general"],
    "object": {},
}
NOT_AN_INT = {"string": "10", "float": 10.0, "bool": True, "null": None, "list": [10], "object": {"n": 10}}
NOT_A_BOOL = {"string": "true", "number": 1, "null": None, "list": [True], "object": {}}


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    with shared_parley() as harness:
        yield harness


@pytest.fixture(scope="module")
def alice(world: Any) -> Any:
    """alice of acme, joined to general on this connection (bob of acme has connected once)."""
    world.connect("bob", name="Bob")
    client = world.connect("alice", name="Alice")
    assert client.send({"action": "join", "channel": "general"})["type"] == "joined"
    return client


def with_(action: str, **fields: Any) -> dict[str, Any]:
    return VALID[action] | fields


def without(action: str, field: str) -> dict[str, Any]:
    return {k: v for k, v in VALID[action].items() if k != field}


def raw(action: str, **fields: str) -> str:
    """A frame body with hand-written JSON values (for escapes json.dumps would not produce)."""
    base = json.dumps(VALID[action])[:-1]
    return base + "".join(f', "{k}": {v}' for k, v in fields.items()) + "}"


def assert_refused(
    world: Any, client: Any, body: str | dict[str, Any], code: str, action: str | None
) -> None:
    before = snapshot(world.aws.dynamodb)
    request_id, reply = send(client, body)
    assert_error_frame(reply, code=code, request_id=request_id, action=action)
    assert snapshot(world.aws.dynamodb) == before


def accepted(world: Any, client: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Send a frame that must succeed (a second later, so the rate limit never interferes)."""
    world.clock.advance(1000)
    _, reply = send(client, body)
    assert reply is not None and reply["type"] != "error", reply
    return reply


# ---- the matrix of malformed frames on each route ------------------------------------------------


Case = tuple[str, str | dict[str, Any], str, str]  # action, body, why, expected code
CHANGES = ("edit", "delete", "thread")
BAD = "bad_request"


def _missing_and_mistyped() -> Iterator[Case]:
    for action, fields in REQUIRED.items():
        for field in fields:
            yield action, without(action, field), f"missing {field}", BAD
            for kind, value in NOT_A_STRING.items():
                yield action, with_(action, **{field: value}), f"{field} is {kind}", BAD
    for action, fields in OPTIONAL_STRINGS.items():
        for field in fields:
            for kind, value in NOT_A_STRING.items():
                if value is not None:  # null is how a client says "not given": accepted
                    yield action, with_(action, **{field: value}), f"{field} is {kind}", BAD
    for kind, value in NOT_AN_INT.items():
        yield "history", with_("history", limit=value), f"limit is {kind}", BAD
        yield "presence", with_("presence", limit=value), f"limit is {kind}", BAD
        yield "thread", with_("thread", limit=value), f"limit is {kind}", BAD
        if value is not None:  # null: no version given, accepted
            yield "edit", with_("edit", version=value), f"version is {kind}", BAD
    for kind, value in NOT_A_BOOL.items():
        yield "create_channel", with_("create_channel", private=value), f"private is {kind}", BAD
        yield "leave", with_("leave", membership=value), f"membership is {kind}", BAD
        yield "react", with_("react", remove=value), f"remove is {kind}", BAD
    for why, policy in {"unknown": "admins", "uppercase": "Creator", "empty": "", "a bool": True}.items():
        yield "create_channel", with_("create_channel", invite=policy), f"invite policy {why}", BAD


def _lengths_and_formats() -> Iterator[Case]:
    yield "message", with_("message", text="x" * (MAX_TEXT + 1)), "text of 4001 characters", BAD
    yield "message", with_("message", text="😀" * (MAX_TEXT + 1)), "text of 4001 emoji", BAD
    yield "message", with_("message", text=""), "empty text", BAD
    yield "message", with_("message", clientMsgId="c" * 65), "clientMsgId of 65 characters", BAD
    yield "message", with_("message", clientMsgId=""), "empty clientMsgId", BAD
    for limit in (0, 101, -1):
        yield "history", with_("history", limit=limit), f"limit {limit}", BAD
        yield "presence", with_("presence", limit=limit), f"limit {limit}", BAD
        yield "thread", with_("thread", limit=limit), f"limit {limit}", BAD
    yield "edit", with_("edit", text="x" * (MAX_TEXT + 1)), "text of 4001 characters", BAD
    yield "edit", with_("edit", text="😀" * (MAX_TEXT + 1)), "text of 4001 emoji", BAD
    yield "edit", with_("edit", text="\u0001" * MAX_TEXT), "text of 24000 bytes as sent", BAD
    yield "edit", with_("edit", text=""), "empty text", BAD
    yield "edit", with_("edit", version=-1), "negative version", BAD
    bad_names = {
        "81 characters": "c" * 81,
        "uppercase": "General",
        "a space": "new chan",
        "a '#'": "a#b",
        "non-ASCII": "café",
        "a trailing newline": "general\n",
        "empty": "",
    }
    for why, name in bad_names.items():
        yield "create_channel", with_("create_channel", name=name), f"name with {why}", BAD
        for action in (
            "join",
            "leave",
            "message",
            "typing",
            "history",
            "presence",
            "invite",
            "react",
            *CHANGES,
        ):
            yield action, with_(action, channel=name), f"channel with {why}", BAD
    # A private channel's id is `name.` and 10 of [a-z0-9]; names never hold the `.`
    bad_ids = {
        "a bare '.'": "hush.",
        "a suffix of 9": "hush.012345678",
        "a suffix of 11": "hush.0123456789a",
        "an uppercase suffix": "hush.ABCDEFGHIJ",
        "a suffix with '-'": "hush.01234-6789",
        "two suffixes": "hush.0123456789.0123456789",
        "no name": ".0123456789",
        "a name of 81": "c" * 81 + ".0123456789",
        "a trailing newline": "hush.0123456789\n",
    }
    for why, channel_id in bad_ids.items():
        for action in (
            "join",
            "leave",
            "message",
            "typing",
            "history",
            "presence",
            "invite",
            "react",
            *CHANGES,
        ):
            yield action, with_(action, channel=channel_id), f"channel id with {why}", BAD
        yield "channels", {"action": "channels", "after": channel_id}, f"after id with {why}", BAD
    yield "create_channel", with_("create_channel", name="hush.0123456789"), "name in the id form", BAD
    yield "create_channel", with_("create_channel", name="a.b"), "name with a '.'", BAD
    bad_users = {
        "empty": "",
        "a space": "bob smith",
        "a '#'": "bob#1",
        "129 characters": "u" * 129,
        "a trailing newline": "bob\n",
        "a bidi override": "bob\u202e",
        "a zero-width space": "bob\u200b",
        "a line separator": "bob\u2028",
        "a NUL": "bob\x00",
    }
    for why, user in bad_users.items():
        yield "invite", with_("invite", user=user), f"user {why}", BAD
        yield "presence", with_("presence", after=user), f"after {why}", BAD
        yield "leave", with_("leave", user=user), f"user {why}", BAD
    # a reaction is a short name (1 to 32 of a-z 0-9 _ + -) or exactly one emoji (parley.reaction_names)
    bad_reactions = {
        "empty": "",
        "33 characters": "r" * 33,
        "uppercase": "ThumbsUp",
        "a space": "thumbs up",
        "a colon form": ":thumbsup:",
        "a trailing newline": "+1\n",
        "two emoji": "👍👍",
        "an emoji and text": "👍a",
        "an emoji and a newline": "👍\n",
        "a letter beside a keycap": "a\u20e3x",
        "a lone skin tone": "\U0001f3fd",
        "a lone zero-width joiner": "\u200d",
        "a lone flag letter": "\U0001f1eb",
        "text presentation": "\u2764\ufe0e",
        "a bidi override": "\u202e",
        "a NUL": "\x00",
        "a '#' alone": "#",
        "a non-emoji symbol": "\u2192",
        "a CJK character": "\u4e2d",
    }
    for why, name in bad_reactions.items():
        yield "react", with_("react", name=name), f"reaction name {why}", BAD


def _bad_message_ids() -> Iterator[Case]:
    """Message ids are exactly 17 ASCII digits."""
    bad_ids = {
        "3 digits": "123",
        "16 digits": VALID_ID[:-1],
        "18 digits": VALID_ID + "0",
        "a letter": VALID_ID[:-1] + "a",
        "a sign": "+" + VALID_ID[1:],
        "a trailing newline": VALID_ID + "\n",
        "full-width digits": "".join(chr(ord(d) + 0xFEE0) for d in VALID_ID),
        "empty": "",
    }
    for why, bad in bad_ids.items():
        yield "join", with_("join", since=bad), f"since with {why}", BAD
        yield "history", with_("history", before=bad), f"before with {why}", BAD
        yield "message", with_("message", threadId=bad), f"threadId with {why}", BAD
        yield "react", with_("react", messageId=bad), f"messageId with {why}", BAD
        yield "edit", with_("edit", messageId=bad), f"messageId with {why}", BAD
        yield "delete", with_("delete", messageId=bad), f"messageId with {why}", BAD
        yield "thread", with_("thread", threadId=bad), f"threadId with {why}", BAD
        yield "thread", with_("thread", after=bad), f"after with {why}", BAD


def _lone_surrogates() -> Iterator[Case]:
    """JSON that decodes to strings UTF-8 cannot hold."""
    for why, escaped in {
        "high": '"\\ud800"',
        "low": '"a\\udfffb"',
        "reversed pair": '"\\ude00\\ud83d"',
    }.items():
        yield "message", raw("message", text=escaped), f"text with a lone {why} surrogate", BAD
    yield "message", raw("message", clientMsgId='"\\ud800"'), "clientMsgId with a lone surrogate", BAD
    yield "edit", raw("edit", text='"\\ud800"'), "text with a lone surrogate", BAD
    yield "invite", raw("invite", user='"\\udbff"'), "user with a lone surrogate", BAD
    yield "presence", raw("presence", after='"\\ud800"'), "after with a lone surrogate", BAD
    yield "react", raw("react", name='"\\ud83d"'), "name with a lone surrogate", BAD


def _unknown_things() -> Iterator[Case]:
    """Channels that do not exist are looked up (not_found) or need a join first (not_joined)."""
    yield "join", with_("join", channel="nope"), "unknown channel", "not_found"
    yield "join", with_("join", channel="nope", since=VALID_ID), "unknown channel with since", "not_found"
    yield "invite", with_("invite", channel="nope"), "unknown channel", "not_found"
    for action in ("message", "typing", "history", "presence", "react"):
        yield action, with_(action, channel="nope"), "unknown channel", "not_joined"
    yield "react", with_("react", messageId=UNKNOWN_ID), "unknown message", "not_found"
    yield "react", with_("react", messageId=UNKNOWN_ID, remove=True), "unknown message, removing", "not_found"
    yield "message", with_("message", threadId=UNKNOWN_ID), "unknown thread", "not_found"
    for action in CHANGES:
        yield action, VALID[action], "unknown message", "not_found"
        yield action, with_(action, channel="nope"), "unknown channel", "not_joined"
        yield action, with_(action, channel="hush.0123456789"), "unknown private id", "not_joined"
    once = with_("message", threadId=UNKNOWN_ID, clientMsgId="t-1")
    yield "message", once, "unknown thread, with clientMsgId", "not_found"
    yield "create_channel", with_("create_channel", name="general"), "name taken", "conflict"
    yield "join", with_("join", channel="general.0123456789"), "unknown private id", "not_found"
    yield "invite", with_("invite", channel="hush.0123456789"), "unknown private id", "not_found"
    for action in ("message", "typing", "history", "presence", "react"):
        yield action, with_(action, channel="hush.0123456789"), "unknown private id", "not_joined"
    yield "leave", with_("leave", user="bob"), "removing from a channel one did not create", "forbidden"
    yield "leave", with_("leave", channel="nope", user="bob"), "removing from an unknown channel", "not_found"
    yield (
        "invite",
        with_("invite", channel="random"),
        "not a member of the channel",
        "forbidden",
    )


def _conversations() -> Iterator[Case]:
    """open_dm's user list and mark_read's message id; users outside the workspace; unknown messages."""
    yield "open_dm", {"action": "open_dm"}, "missing users", BAD
    for kind, value in {"a string": "bob", "null": None, "an object": {"bob": 1}, "a number": 5}.items():
        yield "open_dm", with_("open_dm", users=value), f"users is {kind}", BAD
    yield "open_dm", with_("open_dm", users=[]), "no users", BAD
    yield "open_dm", with_("open_dm", users=[f"u{i}" for i in range(9)]), "9 users", BAD
    yield "open_dm", with_("open_dm", users=["bob", 5]), "a user that is a number", BAD
    for why, user in {
        "empty": "",
        "a space": "bob smith",
        "a '#'": "bob#1",
        "a bidi override": "bob\u202e",
    }.items():
        yield "open_dm", with_("open_dm", users=[user]), f"a user id {why}", BAD
    yield "open_dm", with_("open_dm", users=["alice"]), "only oneself", BAD
    yield "open_dm", with_("open_dm", users=["alice", "alice"]), "oneself twice", BAD
    yield "open_dm", with_("open_dm", users=["nobody"]), "a user who never connected", "not_found"
    yield "open_dm", with_("open_dm", users=["bob", "nobody"]), "one of the users unknown", "not_found"
    yield "create_channel", with_("create_channel", name="dm", private=True), "a private 'dm'", BAD
    for why, bad in {"16 digits": VALID_ID[:-1], "a letter": VALID_ID[:-1] + "a", "empty": ""}.items():
        yield "mark_read", with_("mark_read", messageId=bad), f"messageId with {why}", BAD
    yield "mark_read", with_("mark_read", messageId=5), "messageId is a number", BAD
    yield "mark_read", with_("mark_read", channel="General"), "channel uppercase", BAD
    yield "mark_read", with_("mark_read", messageId=UNKNOWN_ID), "unknown message", "not_found"
    yield "mark_read", with_("mark_read", channel="nope"), "unknown channel", "not_found"
    yield "mark_read", with_("mark_read", channel="hush.0123456789"), "unknown private id", "not_found"
    yield "mark_read", with_("mark_read", channel="dm.0123456789"), "unknown DM", "not_found"


CASES = [
    pytest.param(action, body, code, id=f"{action}: {why}")
    for group in (
        _missing_and_mistyped,
        _lengths_and_formats,
        _bad_message_ids,
        _lone_surrogates,
        _unknown_things,
        _conversations,
    )
    for action, body, why, code in group()
]


@pytest.mark.parametrize(("action", "body", "code"), CASES)
def test_malformed_frame_is_refused_precisely_and_writes_nothing(
    world: Any, alice: Any, action: str, body: str | dict[str, Any], code: str
) -> None:
    # Given alice, connected and joined to general
    # When she sends a frame that is malformed, too long, or names what does not exist
    # Then she gets an error frame with the expected code, her action and the request id, and no table changes
    assert_refused(world, alice, body, code, action)


# ---- $default: not a JSON object, or no known action ---------------------------------------------

DEFAULT_CASES = {
    "not JSON": ("hello", "bad_request"),
    "truncated JSON": ('{"action": "join"', "bad_request"),
    "JSON array": ('["join", "general"]', "bad_request"),
    "JSON string": ('"join"', "bad_request"),
    "JSON number": ("42", "bad_request"),
    "JSON null": ("null", "bad_request"),
    "empty body": ("", "bad_request"),
    "whitespace only": ("   ", "bad_request"),
    "nested too deep": ("[" * 100_000 + "]" * 100_000, "bad_request"),
    "unknown action": ('{"action": "dance"}', "unknown_action"),
    "action in uppercase": ('{"action": "JOIN", "channel": "general"}', "unknown_action"),
    "action naming a system route": ('{"action": "$connect"}', "unknown_action"),
    "missing action": ('{"channel": "general"}', "unknown_action"),
    "action null": ('{"action": null}', "unknown_action"),
    "action a number": ('{"action": 5}', "unknown_action"),
    "action a list": ('{"action": ["join"]}', "unknown_action"),
    "action with a lone surrogate": ('{"action": "\\ud800"}', "unknown_action"),
    "action of 10 KB": (json.dumps({"action": "x" * 10_000}), "unknown_action"),
}


@pytest.mark.parametrize(("body", "code"), DEFAULT_CASES.values(), ids=DEFAULT_CASES.keys())
def test_default_route_refuses_frames_without_a_known_action(
    world: Any, alice: Any, body: str, code: str
) -> None:
    # Given alice is connected
    before = snapshot(world.aws.dynamodb)
    # When API Gateway routes her frame to $default (not JSON, not an object, or no known action)
    request_id, reply = send(alice, body, route="$default")
    # Then $default answers an error frame without an action, and nothing is written
    assert_error_frame(reply, code=code, request_id=request_id, action=None)
    assert snapshot(world.aws.dynamodb) == before


def test_unknown_action_message_lists_the_known_actions(world: Any, alice: Any) -> None:
    # Given alice sends an action Parley does not know
    # When $default answers
    _, reply = send(alice, '{"action": "dance"}', route="$default")
    # Then the message says which actions exist
    assert reply is not None
    for action in (
        "join",
        "leave",
        "message",
        "typing",
        "history",
        "presence",
        "heartbeat",
        "create_channel",
        "invite",
    ):
        assert action in reply["message"]


def test_error_message_never_echoes_the_offending_value(world: Any, alice: Any) -> None:
    # Given a frame whose bad value is a recognisable marker
    marker = "MARKER-" + "q" * 4000
    # When the route refuses it
    _, reply = send(alice, with_("message", text=marker))
    # Then the error message does not repeat the input
    assert reply is not None and reply["code"] == "bad_request"
    assert "MARKER" not in json.dumps(reply)


# ---- what is accepted at the edges ---------------------------------------------------------------


def test_text_of_exactly_4000_characters_is_accepted(world: Any, alice: Any) -> None:
    # Given a text of the maximum length
    # When alice posts it
    reply = accepted(world, alice, with_("message", text="x" * MAX_TEXT))
    # Then it is acknowledged
    assert reply["type"] == "ack"


def _hard_text() -> str:
    """Exactly 4000 code points of emoji (astral, ZWJ sequences), RTL script and marks, NUL and combining."""
    pieces = ["😀", "👩‍👩‍👧", "שלום", "\u202e", "مرحبا", "\x00", "e\u0301", "🇫🇷", "\u200f", "\U0010fffd"]
    text = ("".join(pieces) * MAX_TEXT)[:MAX_TEXT]
    assert len(text) == MAX_TEXT and "\x00" in text and "\u202e" in text
    return text


def test_text_of_4000_emoji_rtl_and_nul_code_points_is_returned_intact_by_history(
    world: Any, alice: Any
) -> None:
    # Given alice posts 4000 code points of emoji, RTL text and NUL
    text = _hard_text()
    ack = accepted(world, alice, with_("message", text=text))
    # When she reads the history
    history = accepted(world, alice, {"action": "history", "channel": "general", "limit": 100})
    # Then the message comes back exactly as sent
    stored = [m for m in history["messages"] if m["id"] == ack["id"]]
    assert len(stored) == 1 and stored[0]["text"] == text


def test_text_is_sent_as_utf8_with_escapes_decoded(world: Any, alice: Any) -> None:
    # Given a frame that writes an emoji as a JSON surrogate-pair escape, and a NUL as \u0000
    body = raw("message", text='"\\ud83d\\ude00\\u0000"')
    world.clock.advance(1000)
    _, ack = send(alice, body)
    # When she reads the history
    history = accepted(world, alice, {"action": "history", "channel": "general", "limit": 1})
    # Then the stored text is the decoded emoji and NUL
    assert ack is not None and ack["type"] == "ack"
    assert history["messages"][-1]["text"] == "😀\x00"


@pytest.mark.parametrize(
    "frame",
    [
        with_("message", clientMsgId="c" * 64),
        with_("message", clientMsgId=None, threadId=None),
        with_("join", since=None),
        with_("join", since="00000000000000000"),
        with_("history", before=None),
        with_("history", before="00000000000000000"),
        with_("history", limit=1),
        with_("history", limit=100),
        with_("history", before=VALID_ID, limit=100),
        with_("presence", limit=1),
        with_("presence", limit=100),
        with_("presence", after=None),
        with_("presence", after="u" * 128, limit=100),
        with_("presence", after="émile@example.com"),
        with_("create_channel", name="c" * 80),
        with_("create_channel", name="0_-9", private=False),
        with_("create_channel", name="c" * 80, private=True),
        with_("invite", user="u" * 128),
        with_("invite", user="émile@example.com"),
    ],
    ids=[
        "clientMsgId of 64",
        "optional ids null",
        "since null",
        "since all zeros",
        "before null",
        "before all zeros",
        "limit 1",
        "limit 100",
        "before and limit 100",
        "presence limit 1",
        "presence limit 100",
        "after null",
        "after of 128 and limit 100",
        "after with non-ASCII and @",
        "channel name of 80",
        "channel name digits, underscore, dash",
        "private channel name of 80",
        "user id of 128",
        "user id with non-ASCII and @",
    ],
)
def test_frames_at_the_limits_are_accepted(world: Any, alice: Any, frame: dict[str, Any]) -> None:
    # Given a frame exactly at an allowed limit (or with an optional field null)
    # When alice sends it
    # Then it is served, not refused
    accepted(world, alice, frame)


@pytest.mark.parametrize("action", ["heartbeat", "channels"])
@pytest.mark.parametrize(
    "extra",
    [{"channel": 5}, {"limit": "x"}, {"user": None}, {"data": [1, {"a": []}]}, {"text": "\x00" * 10}],
    ids=["number", "string", "null", "nested", "NUL"],
)
def test_frames_without_fields_ignore_unknown_fields_of_any_type(
    world: Any, alice: Any, action: str, extra: dict[str, Any]
) -> None:
    # Given heartbeat or channels (no fields of their own) carrying unknown fields of odd types
    # When alice sends it
    reply = accepted(world, alice, {"action": action, **extra})
    # Then it is answered as usual
    assert reply["type"] == action


def test_leave_of_an_unknown_channel_answers_left_and_writes_nothing(world: Any, alice: Any) -> None:
    # Given a channel that does not exist
    before = snapshot(world.aws.dynamodb)
    # When alice leaves it
    _, reply = send(alice, with_("leave", channel="nope"))
    # Then leave is idempotent: left, and no table changes
    assert reply == {"type": "left", "channel": "nope"}
    assert snapshot(world.aws.dynamodb) == before


@pytest.mark.parametrize(
    "change",
    [{"text": "something else"}, {"channel": "random"}, {"threadId": UNKNOWN_ID}],
    ids=["different text", "different channel", "different thread"],
)
def test_reused_client_msg_id_for_a_different_message_is_a_conflict_and_writes_nothing(
    world: Any, alice: Any, change: dict[str, Any]
) -> None:
    # Given alice posted a message with clientMsgId k (and joined random, so only the reuse can fail)
    key = f"reuse-{next(iter(change))}"
    accepted(world, alice, {"action": "join", "channel": "random"})
    accepted(world, alice, with_("message", text="first", clientMsgId=key))
    # When she sends a different message with the same clientMsgId
    # Then it is a conflict and nothing is written
    assert_refused(
        world, alice, with_("message", text="first", clientMsgId=key) | change, "conflict", "message"
    )
