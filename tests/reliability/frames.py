"""Hypothesis strategies for hostile client frames: every action's frame, mutated field by field."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from parley.errors import ErrorCode
from tests.support.template import action_routes

ACTIONS = action_routes()
# Codes a refused frame may get; `internal` never (nor `forbidden`, reserved, or `token_expired`).
DOCUMENTED = {
    ErrorCode.BAD_REQUEST,
    ErrorCode.UNKNOWN_ACTION,
    ErrorCode.NOT_FOUND,
    ErrorCode.NOT_JOINED,
    ErrorCode.RATE_LIMITED,
    ErrorCode.CONFLICT,
}
VALID: dict[str, dict[str, Any]] = {
    "join": {"action": "join", "channel": "general", "since": "17900000000000001"},
    "leave": {"action": "leave", "channel": "general"},
    "message": {
        "action": "message",
        "channel": "general",
        "text": "hi",
        "clientMsgId": "c-1",
        "threadId": "17900000000000001",
    },
    "typing": {"action": "typing", "channel": "general"},
    "history": {"action": "history", "channel": "general", "before": "17900000000000001", "limit": 10},
    "presence": {"action": "presence", "channel": "general", "after": "alice", "limit": 10},
    "heartbeat": {"action": "heartbeat"},
    "create_channel": {"action": "create_channel", "name": "fuzzed", "private": False},
    "invite": {"action": "invite", "channel": "general", "user": "bob"},
    "channels": {"action": "channels"},
    "open_dm": {"action": "open_dm", "users": ["bob", "carol"]},
    "mark_read": {"action": "mark_read", "channel": "general", "messageId": "17900000000000001"},
    "react": {"action": "react", "channel": "general", "messageId": "17900000000000001", "name": "+1"},
    "edit": {
        "action": "edit",
        "channel": "general",
        "messageId": "17900000000000001",
        "text": "fixed",
        "version": 1,
    },
    "delete": {"action": "delete", "channel": "general", "messageId": "17900000000000001"},
    "thread": {
        "action": "thread",
        "channel": "general",
        "threadId": "17900000000000001",
        "after": "17900000000000002",
        "limit": 10,
    },
}

EDGE_STRINGS = [
    "",
    " ",
    "\x00",
    "gen\x00eral",
    "\ud800",  # lone surrogates: valid JSON escapes, invalid Unicode
    "\udfff",
    "a\ud83d",
    "\u202egeneral",  # right-to-left override
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew (RTL)
    "\u200b",
    "\ufeff",
    "\U0010ffff",
    "😀",
    "👩‍👩‍👧‍👦",
    "a" * 4000,
    "a" * 4001,
    "😀" * 4000,  # 4,000 code points (8,000 UTF-16 units)
    "😀" * 4001,
    "é" * 4001,
    "x" * 64,
    "x" * 65,
    "x" * 80,
    "x" * 81,
    "x" * 129,
    "0" * 17,
    "1" * 16,
    "1" * 18,
    "१२३४५६७८९०१२३४५६७",  # 17 Devanagari digits: \d would match them, [0-9] must not
    "GENERAL",
    "general\n",
    "general#x",
    "../general",
    "general; DROP TABLE",
    "%00",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "x" * 30_000,
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(EDGE_STRINGS)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


field_values = (
    json_values
    | st.sampled_from(EDGE_STRINGS)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=50)  # surrogates included
    | st.integers(min_value=2, max_value=200).map(nested)
)


@st.composite
def mutated_frame(draw: Any, action: str) -> dict[str, Any]:
    """The action's valid frame with each field kept, dropped or replaced; sometimes extra fields."""
    frame: dict[str, Any] = {}
    for key, value in VALID[action].items():
        if key == "action":
            frame[key] = draw(st.sampled_from([value] * 8 + [value.upper(), value + " ", None, 1, [value]]))
            continue
        choice = draw(st.integers(0, 3))
        if choice == 0:
            frame[key] = value
        elif choice == 1:
            continue
        else:
            frame[key] = draw(field_values)
    extras = draw(
        st.dictionaries(
            st.sampled_from(["userId", "user_id", "workspace", "connectionId", "client_msg_id", "id", "x"]),
            field_values,
            max_size=3,
        )
    )
    frame.update({k: v for k, v in extras.items() if k not in frame})
    return frame


def encode(frame: Any) -> str:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a JavaScript client would send them
    return json.dumps(frame, ensure_ascii=True)


raw_bodies = st.one_of(
    st.text(max_size=200),  # mostly not JSON
    st.sampled_from(
        [
            "",
            "null",
            "[]",
            '[{"action": "join"}]',
            '"join"',
            "42",
            "{",
            '{"action": "join", "channel": "general"',
            '{"action": "message", "action": "join", "channel": "general"}',
            '{"action": NaN}',
            '{"action": "join", "channel": "\\ud800"}',
            '\ufeff{"action": "heartbeat"}',
            '{"action": "heartbeat"} trailing',
            "[" * 5000 + "]" * 5000,
            '{"a":' * 3000 + "1" + "}" * 3000,
        ]
    ),
    json_values.map(encode),
)


def route_of(body: str) -> str:
    """API Gateway's route selection on $request.body.action: a JSON object's string action, else $default."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return "$default"
    if isinstance(data, dict) and isinstance(data.get("action"), str) and data["action"] in ACTIONS:
        return str(data["action"])
    return "$default"


def check_error(frame: dict[str, Any]) -> None:
    """A refusal as documented: a stable code (never internal), a short human message, the request id."""
    assert frame["type"] == "error", frame
    assert frame["code"] in DOCUMENTED, frame
    assert isinstance(frame["message"], str) and frame["message"].strip(), frame
    assert len(frame["message"]) <= 600, frame  # a huge input is never echoed back whole
    assert "Traceback" not in frame["message"] and 'File "' not in frame["message"], frame
    assert frame.get("requestId"), frame
