"""docs/protocol.md cannot drift from the code: actions, fields, replies, events, error codes and limits."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest

from parley import auth, chat, idempotency, ids, protocol
from parley.config import Settings
from parley.errors import ErrorCode
from parley.models import Channel, ChannelListing, Message, ReactionChange, ReactionSummary, User
from tests.support.ws_client import REPLY

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
DASH = "\u2013"  # the doc writes ranges with an en dash

USER = User("alice", "Alice")
MESSAGE = Message(
    "17900000000000001",
    "acme",
    "general",
    "2026-09-21T14:13:20.000Z",
    USER,
    "hi @bob",
    "c1",
    "1" * 17,
    ReactionSummary((("👍", 2),), frozenset({"👍"}), 3),
    app="deploy-bot",
    mentions=("bob",),
)
REACTION = ReactionChange("acme", "general", MESSAGE.id, USER, "👍", True)
CHANNEL = Channel("acme", "design", True, "alice")
# A message with every optional field: reacted to, edited, then deleted, and a thread's parent
CHANGED = Message(
    "17900000000000002", "acme", "general", "2026-09-21T14:13:20.000Z", USER, "", "c2", "1" * 17,
    reactions=ReactionSummary((("👍", 2),), frozenset({"👍"}), 3),
    version=2, edited_at="2026-09-21T14:15:00.000Z", deleted_at="2026-09-21T14:16:00.000Z",
    reply_count=1, last_reply_at="2026-09-21T14:14:00.000Z", thread_version=1, app="deploy-bot",
    mentions=("bob",),
)  # fmt: skip
DM = Channel("acme", "dm.k3j9x0a1b2", True, "", "creator", "dm", (USER, User("bob", "Bob")))

# Every frame the server sends, built by its encoder. A new encoder must be added here (see below).
ENCODERS: dict[str, Callable[[], dict[str, Any]]] = {
    "joined": lambda: protocol.joined("general", [MESSAGE], True, [USER], presence_more=False),
    "left": lambda: protocol.left("general"),
    "ack": lambda: protocol.ack(MESSAGE),
    "history": lambda: protocol.history("general", [MESSAGE], False),
    "presence": lambda: protocol.presence("general", [USER], True),
    "heartbeat": lambda: protocol.heartbeat(MESSAGE.ts),
    "channel_created": lambda: protocol.channel_created(CHANNEL),
    "invited": lambda: protocol.invited("design", "bob"),
    "channels": lambda: protocol.channels(
        [ChannelListing(CHANNEL, True, 3, 1), ChannelListing(DM, True, 0, 0)]
    ),
    "reacted": lambda: protocol.reacted(REACTION, changed=True),
    "reaction_event": lambda: protocol.reaction_event(REACTION, 2, 3),
    "dm_opened": lambda: protocol.dm_opened(DM),
    "marked_read": lambda: protocol.marked_read("general", MESSAGE.id, 2, 1),
    "read_event": lambda: protocol.read_event("general", MESSAGE.id, 2, 1),
    "message_event": lambda: protocol.message_event(MESSAGE),
    "edited": lambda: protocol.edited(CHANGED),
    "deleted": lambda: protocol.deleted(CHANGED),
    "thread": lambda: protocol.thread(CHANGED, [MESSAGE], False),
    "message_updated_event": lambda: protocol.message_updated_event(CHANGED),
    "message_deleted_event": lambda: protocol.message_deleted_event(CHANGED),
    "thread_updated_event": lambda: protocol.thread_updated_event(CHANGED),
    "typing_event": lambda: protocol.typing_event("e1", "general", USER),
    "presence_diff_event": lambda: protocol.presence_diff_event("p1", "general", [USER], []),
    "error": lambda: protocol.error(
        ErrorCode.RATE_LIMITED, "slow", request_id="r1", action="message", retry_after_ms=200
    ),
}
# Functions of protocol.py that are not frame encoders.
HELPERS = {
    "decode_json_object",
    "parse_frame",
    "user_wire",
    "message_wire",
    "reactions_wire",
    "thread_wire",
    "channel_wire",
    "listing_wire",
    "encode",
    "batch_frame",
    "text_bytes",
    "encoded_size",
    "fit",
    "fit_frame",
    "presence_diff_events",
}


def section(heading: str) -> str:
    """The text under a `## heading` or `### heading`, up to the next heading of the same or higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", DOC, flags=re.MULTILINE)
    assert match, f"docs/protocol.md has no section {heading!r}"
    level = len(match.group(1))
    rest = DOC[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start()] if end else rest


def table_rows(text: str) -> dict[str, str]:
    """First-column code names of the markdown tables in `text`, with their whole row."""
    rows = {}
    for line in text.splitlines():
        cell = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if cell:
            rows[cell.group(1)] = line
    return rows


def wire_names(model: type[protocol.Frame]) -> dict[str, bool]:
    """A frame's field names as clients write them, each with whether it is required."""
    return {(f.alias or name): f.is_required() for name, f in model.model_fields.items()}


def mentioned(name: str, text: str = DOC) -> bool:
    return f"`{name}`" in text or f'"{name}"' in text


# ---- actions and their fields --------------------------------------------------------------------


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_every_action_has_a_section(action):
    assert section(f"`{action}`")


def test_the_route_table_lists_exactly_the_actions():
    assert set(table_rows(section("Frames"))) == set(protocol.FRAMES)


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_an_actions_field_table_lists_exactly_its_fields(action):
    documented = table_rows(section(f"`{action}`"))
    assert set(documented) == set(wire_names(protocol.FRAMES[action]))


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_optional_fields_and_only_they_are_documented_as_optional(action):
    rows = table_rows(section(f"`{action}`"))
    for name, required in wire_names(protocol.FRAMES[action]).items():
        assert ("optional" in rows[name]) is (not required), f"{action}.{name}: {rows[name]}"


# ---- replies and events --------------------------------------------------------------------------


def test_every_encoder_is_covered_here():
    functions = {
        name
        for name, fn in inspect.getmembers(protocol, inspect.isfunction)
        if fn.__module__ == protocol.__name__ and not name.startswith("_")
    }
    assert functions == set(ENCODERS) | HELPERS


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_frame_type_and_key_the_server_sends_is_documented(encoder):
    frame = ENCODERS[encoder]()
    assert f'"type": "{frame["type"]}"' in DOC, f"no example of a {frame['type']!r} frame"
    for key in frame:
        assert mentioned(key), f"{frame['type']}.{key} is not documented"


# The reply each action gets, as the shared test client knows it (None: no reply).
REPLIES = REPLY


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_an_actions_section_shows_its_reply_with_every_key(action):
    text = section(f"`{action}`")
    reply_type = REPLIES.get(action)
    if reply_type is None:
        assert "No reply" in text
        return
    reply = ENCODERS[reply_type]()
    assert f'"type": "{reply["type"]}"' in text
    for key in reply:
        assert f'"{key}": ' in text, f"the {reply['type']!r} example lacks {key!r}"


def test_the_message_table_lists_exactly_the_message_fields():
    assert set(table_rows(section("Messages"))) == set(protocol.message_wire(CHANGED))


def test_nested_objects_are_documented():
    for key in protocol.channels([ChannelListing(DM, True, 1, 0)])["channels"][0]:
        assert mentioned(key, section("`channels`"))
    for key in protocol.dm_opened(DM)["channel"]:
        assert mentioned(key, section("`open_dm`"))
    for key in protocol.channel_created(CHANNEL)["channel"]:
        assert mentioned(key, section("`create_channel`"))
    for key in protocol.presence_diff_event("p1", "general", [USER], [])["joins"][0]:
        assert mentioned(key, section("`presence_diff` event"))
    for key in protocol.presence("general", [USER], False)["users"][0]:
        assert mentioned(key, section("`presence`"))


@pytest.mark.parametrize(
    "event",
    [
        "message",
        "typing",
        "presence_diff",
        "message_updated",
        "message_deleted",
        "thread_updated",
        "batch",
        "read",
    ],
)
def test_every_event_has_a_section(event):
    assert f'"type": "{event}"' in section(f"`{event}` event")


def test_the_batch_envelope_is_documented_as_sent():
    assert '{"type": "batch", "events": [' in section("`batch` event")
    assert protocol.batch_frame(["{}"]).startswith('{"type":"batch","events":[')


def test_the_error_field_table_lists_exactly_the_error_frame_keys():
    fields = table_rows(section("Errors").split("| code | meaning")[0])
    frame = ENCODERS["error"]()
    assert set(fields) == set(frame) - {"type"}


# ---- error codes ---------------------------------------------------------------------------------


def test_the_error_code_table_lists_exactly_the_error_codes():
    codes = {name for name in table_rows(section("Errors")) if name in {c.value for c in ErrorCode}}
    assert codes == {c.value for c in ErrorCode}
    described = table_rows(section("Errors").split("| code | meaning")[1])
    assert set(described) == {c.value for c in ErrorCode}


# ---- limits --------------------------------------------------------------------------------------


def test_frame_limits_match_the_code():
    message, join, history = section("`message`"), section("`join`"), section("`history`")
    presence = section("`presence`")
    assert f"1{DASH}{protocol.MAX_TEXT} characters" in message
    assert f"1{DASH}{protocol.MAX_CLIENT_MSG_ID} characters" in message
    assert f"last {protocol.JOIN_RECENT} messages" in join
    assert f"at most {protocol.RECOVER_MAX} of them" in join
    assert f"newest {protocol.RECOVER_MAX}" in join
    assert f"1{DASH}{protocol.HISTORY_MAX}, default {protocol.HISTORY_DEFAULT}" in history
    assert f"the first {protocol.JOIN_PRESENCE_MAX} present users" in join
    assert f"1{DASH}{protocol.PRESENCE_MAX}, default {protocol.PRESENCE_MAX}" in presence


def test_the_frame_budget_and_the_text_byte_limit_match_the_code():
    budget, limits = section("Frame size"), section("Limits at a glance")
    assert f"{protocol.FRAME_BUDGET:,} bytes" in budget
    assert f"{protocol.JOIN_PRESENCE_BUDGET:,} bytes" in budget
    assert f"| frame budget | {protocol.FRAME_BUDGET:,} bytes" in limits
    assert f"{protocol.MAX_TEXT_BYTES:,} bytes" in section("`message`")
    assert f"{protocol.MAX_TEXT_BYTES:,} bytes" in limits


def test_the_limits_table_matches_the_code():
    limits = section("Limits at a glance")
    settings = Settings.model_fields
    for phrase in [
        f"1{DASH}{protocol.MAX_TEXT} characters",
        f"1{DASH}{protocol.MAX_CLIENT_MSG_ID} characters, "
        f"remembered for {idempotency.WINDOW_SECONDS // 3600} hours",
        f"the last {protocol.JOIN_RECENT} messages",
        f"at most {protocol.RECOVER_MAX} messages",
        f"1{DASH}{protocol.HISTORY_MAX}, default {protocol.HISTORY_DEFAULT}",
        f"| `join` presence list | the first {protocol.JOIN_PRESENCE_MAX} present users, and you |",
        f"| `presence` `limit` | 1{DASH}{protocol.PRESENCE_MAX}, default {protocol.PRESENCE_MAX} |",
        f"burst {settings['rate_burst'].default}, "
        f"then {settings['rate_per_second'].default:g} messages per second",
        f"1 per user and channel per {chat.TYPING_WINDOW_MS // 1000} s",
        f"| presence grace | {settings['presence_grace_seconds'].default} s |",
        f"| heartbeat timeout | {settings['heartbeat_timeout_seconds'].default // 60} minutes |",
        f"{auth.MAX_TOKEN_BYTES} bytes; {auth.LEEWAY_SECONDS} s leeway",
    ]:
        assert phrase in limits, phrase


def test_patterns_match_the_code():
    channel_pattern = get_args(protocol.ChannelName)[1].pattern
    assert f"`{channel_pattern}`" in DOC
    channel_id_pattern = get_args(protocol.ChannelId)[1].pattern
    assert f"`{channel_id_pattern}`" in DOC
    assert f"{ids.PRIVATE_ID_SUFFIX_LENGTH} characters of `a{DASH}z 0{DASH}9`" in DOC
    id_pattern = get_args(protocol.MessageId)[1].pattern
    digits = re.fullmatch(r"\^\[0-9\]\{(\d+)\}\$", id_pattern)
    assert digits, id_pattern
    assert f"exactly {digits.group(1)} ASCII digits" in DOC


def test_default_channels_match_the_code():
    connecting = section("Connecting")
    assert all(f"`{name}`" in connecting for name in chat.DEFAULT_CHANNELS)
