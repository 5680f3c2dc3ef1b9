"""Protocol v1 without I/O: limits, which reply answers which action, decoding (batches unpacked),
encoding, client-side checks, message ids and the reconnect backoff. Tested without a network."""

from __future__ import annotations

import json
import math
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

from parley_client.frames import Frame

TEXT_MAX: Final = 4000  # code points, as the server counts them
TEXT_MAX_BYTES: Final = 16_000  # UTF-8 inside the JSON string, escapes included
CLIENT_MSG_ID_MAX: Final = 64
HISTORY_PAGE: Final = 50
HISTORY_MAX: Final = 100
JOIN_WITHOUT_SINCE: Final = 50

# The reply each action gets (None: no reply unless refused). A newer server's actions are not here:
# `request(..., reply="...")` names theirs, or the first frame that is neither a known reply nor a known
# event answers (see `answers`). `register_action` adds one for every later request.
REPLIES: dict[str, str | None] = {
    "join": "joined",
    "leave": "left",
    "message": "ack",
    "typing": None,
    "history": "history",
    "presence": "presence",
    "heartbeat": "heartbeat",
    "create_channel": "channel_created",
    "invite": "invited",
    "channels": "channels",
    "react": "reacted",
    "edit": "edited",
    "delete": "deleted",
    "thread": "thread",
    "open_dm": "dm_opened",
    "mark_read": "marked_read",
}
EVENT_TYPES: set[str] = {
    "message",
    "typing",
    "presence_diff",
    "reaction",
    "message_updated",
    "message_deleted",
    "thread_updated",
    "read",
}


def register_action(action: str, reply: str | None, *, events: tuple[str, ...] = ()) -> None:
    """Teach the client an action it does not know yet (and the event types it brings)."""
    REPLIES[action] = reply
    EVENT_TYPES.update(events)


def reply_types() -> set[str]:
    return {kind for kind in REPLIES.values() if kind} | {"error"}


def encode(frame: Mapping[str, Any]) -> str:
    # ensure_ascii=False: the server counts a text's UTF-8 bytes, not its escapes
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes) -> list[Frame]:
    """Every frame one WebSocket message holds, in order: a `batch` is unpacked into its events.
    Anything that is not a JSON object with a string `type` becomes a `gateway` frame."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return [{"type": "gateway", "message": text}]
    if not isinstance(frame, dict):
        return [{"type": "gateway", "message": text}]
    if frame.get("type") == "batch":
        events = frame.get("events")
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    if not isinstance(frame.get("type"), str):
        return [{**frame, "type": "gateway"}]
    return [frame]


def is_event(frame: Frame) -> bool:
    return frame.get("type") in EVENT_TYPES


def answers(frame: Frame, action: str | None, reply: str | None, client_msg_id: str | None = None) -> bool:
    """Whether `frame` is the reply to a request of `action` that expects `reply` (None: unknown).

    Replies carry no request id: one request is outstanding per connection at a time, so the first
    frame of the expected type answers it, or an error naming the action (or none: `$default`'s), or a
    gateway answer. An ack must carry the message's clientMsgId, so a late ack answers nothing else.
    """
    kind = frame.get("type")
    if kind == "gateway":
        return True
    if kind == "error":
        return frame.get("action") in (None, action)
    if reply is not None:
        if kind != reply:
            return False
        return kind != "ack" or client_msg_id is None or frame.get("clientMsgId") == client_msg_id
    # an action this version does not know: whatever is neither a known reply nor a known event
    return kind not in EVENT_TYPES and kind not in reply_types()


def retryable(frame: Mapping[str, Any]) -> bool:
    """`internal` from Parley, or the gateway's own "Internal server error" (the function failed or
    timed out): the same frame may be sent again."""
    return frame.get("code") == "internal" or frame.get("message") == "Internal server error"


def text_bytes(text: str) -> int:
    """A text's bytes as the server counts them: its UTF-8 inside a JSON string, escapes included."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def text_problem(text: str) -> str | None:
    """Why this text cannot be sent, or None."""
    if text.strip() == "":
        return "Type a message first."
    if len(text) > TEXT_MAX:
        return f"Too long: {len(text)} characters, the limit is {TEXT_MAX}."
    size = text_bytes(text)
    if size > TEXT_MAX_BYTES:
        return f"Too long: {size} bytes, the limit is {TEXT_MAX_BYTES}."
    return None


def new_client_msg_id() -> str:
    return "c-" + secrets.token_hex(12)


def backoff_delay(
    attempt: int, *, base_s: float = 0.5, cap_s: float = 30.0, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before reconnect attempt `attempt` (1, 2, ...): exponential, capped, "equal jitter" (half
    fixed, half random), so a server restart does not see every client return in the same instant."""
    ceiling = min(cap_s, base_s * math.pow(2, max(0, attempt - 1)))
    return ceiling / 2 + rand() * (ceiling / 2)


def with_token(url: str, token: str) -> str:
    """The URL with `token` in the query string, where Parley's authorizer reads it."""
    from urllib.parse import quote

    return f"{url}{'&' if '?' in url else '?'}token={quote(token, safe='')}"


class SeenIds:
    """A bounded set of event ids already handled: events are delivered at least once."""

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, event_id: str | None) -> bool:
        """True the first time an id is seen (and for events without one)."""
        if event_id is None:
            return True
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        return True
