"""Wire protocol v1: the client frames Parley accepts and the frames it sends. Defined once, here.

docs/protocol.md is checked against this module by tests/unit/test_protocol_doc.py.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from parley.errors import BadRequest, ErrorCode
from parley.models import Channel, ChannelListing, Message, User

MAX_TEXT = 4000
MAX_CLIENT_MSG_ID = 64
JOIN_RECENT = 50
RECOVER_MAX = 100
HISTORY_DEFAULT = 50
HISTORY_MAX = 100
# `joined` lists this many present users at most (plus the joiner); `presence` pages through the rest.
JOIN_PRESENCE_MAX = 100
PRESENCE_MAX = 100


def _no_lone_surrogates(value: Any) -> Any:
    # JSON may carry lone surrogates (\ud800); they cannot be stored as UTF-8, so refuse them up front.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


# Constraints first, so their errors speak of characters (after an AfterValidator they count "items").
_Unicode = BeforeValidator(_no_lone_surrogates)
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,80}$")]
MessageId = Annotated[str, StringConstraints(pattern=r"^[0-9]{17}$")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s#]+$"), _Unicode]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT), _Unicode]
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CLIENT_MSG_ID), _Unicode]


class Frame(BaseModel):
    """A client frame. Strict: "1" is not a number and 1 is not a string. Unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    action: str


class JoinFrame(Frame):
    action: Literal["join"]
    channel: ChannelName
    since: MessageId | None = None


class LeaveFrame(Frame):
    action: Literal["leave"]
    channel: ChannelName


class MessageFrame(Frame):
    action: Literal["message"]
    channel: ChannelName
    text: Text
    client_msg_id: ClientMsgId | None = Field(default=None, alias="clientMsgId")
    thread_id: MessageId | None = Field(default=None, alias="threadId")


class TypingFrame(Frame):
    action: Literal["typing"]
    channel: ChannelName


class HistoryFrame(Frame):
    action: Literal["history"]
    channel: ChannelName
    before: MessageId | None = None
    limit: Annotated[int, Field(ge=1, le=HISTORY_MAX)] = HISTORY_DEFAULT


class PresenceFrame(Frame):
    action: Literal["presence"]
    channel: ChannelName
    after: UserId | None = None
    limit: Annotated[int, Field(ge=1, le=PRESENCE_MAX)] = PRESENCE_MAX


class HeartbeatFrame(Frame):
    action: Literal["heartbeat"]


class CreateChannelFrame(Frame):
    action: Literal["create_channel"]
    name: ChannelName
    private: bool = False


class InviteFrame(Frame):
    action: Literal["invite"]
    channel: ChannelName
    user: UserId


class ChannelsFrame(Frame):
    action: Literal["channels"]


F = TypeVar("F", bound=Frame)

FRAMES: dict[str, type[Frame]] = {
    "join": JoinFrame,
    "leave": LeaveFrame,
    "message": MessageFrame,
    "typing": TypingFrame,
    "history": HistoryFrame,
    "presence": PresenceFrame,
    "heartbeat": HeartbeatFrame,
    "create_channel": CreateChannelFrame,
    "invite": InviteFrame,
    "channels": ChannelsFrame,
}


ACTION_OF: dict[type[Frame], str] = {model: name for name, model in FRAMES.items()}


def decode_json_object(body: str | None) -> dict[str, Any]:
    """The frame body as a JSON object, or BadRequest."""
    if body is None or body == "":
        raise BadRequest("empty frame: send a JSON object with an 'action'")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("frame must be a JSON object")
    return data


def parse_frame(body: str | None, model: type[F]) -> F:
    """Validate a frame body against its model; every failure is a BadRequest naming the field."""
    data = decode_json_object(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "frame"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# ---- frames Parley sends -------------------------------------------------------------------------


def user_wire(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name}


def message_wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": message.id,
        "channel": message.channel,
        "ts": message.ts,
        "user": user_wire(message.user),
        "text": message.text,
    }
    if message.client_msg_id is not None:
        wire["clientMsgId"] = message.client_msg_id
    if message.thread_id is not None:
        wire["threadId"] = message.thread_id
    return wire


def channel_wire(channel: Channel) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.id, "private": channel.private}


def joined(
    channel: str, messages: list[Message], recovered: bool, presence: list[User], *, presence_more: bool
) -> dict[str, Any]:
    return {
        "type": "joined",
        "channel": channel,
        "messages": [message_wire(m) for m in messages],
        "recovered": recovered,
        "presence": [user_wire(u) for u in presence],
        "presenceMore": presence_more,
    }


def left(channel: str) -> dict[str, Any]:
    return {"type": "left", "channel": channel}


def ack(message: Message) -> dict[str, Any]:
    return {"type": "ack", "clientMsgId": message.client_msg_id, "id": message.id, "ts": message.ts}


def history(channel: str, messages: list[Message], has_more: bool) -> dict[str, Any]:
    return {
        "type": "history",
        "channel": channel,
        "messages": [message_wire(m) for m in messages],
        "hasMore": has_more,
    }


def presence(channel: str, users: list[User], has_more: bool) -> dict[str, Any]:
    """A page of present users; `next` is the cursor for the following page (the last id), or null."""
    return {
        "type": "presence",
        "channel": channel,
        "users": [user_wire(u) for u in users],
        "next": users[-1].id if has_more and users else None,
    }


def heartbeat(ts: str) -> dict[str, Any]:
    return {"type": "heartbeat", "ts": ts}


def channel_created(channel: Channel) -> dict[str, Any]:
    return {"type": "channel_created", "channel": channel_wire(channel)}


def invited(channel: str, user_id: str) -> dict[str, Any]:
    return {"type": "invited", "channel": channel, "user": user_id}


def channels(listings: list[ChannelListing]) -> dict[str, Any]:
    return {
        "type": "channels",
        "channels": [channel_wire(item.channel) | {"member": item.member} for item in listings],
    }


def message_event(message: Message) -> dict[str, Any]:
    return {"type": "message", **message_wire(message)}


def typing_event(event_id: str, channel: str, user: User) -> dict[str, Any]:
    return {"type": "typing", "id": event_id, "channel": channel, "user": user_wire(user)}


def presence_diff_event(event_id: str, channel: str, joins: list[User], leaves: list[User]) -> dict[str, Any]:
    return {
        "type": "presence_diff",
        "id": event_id,
        "channel": channel,
        "joins": [user_wire(u) for u in joins],
        "leaves": [user_wire(u) for u in leaves],
    }


def batch_frame(encoded_events: list[str]) -> str:
    """A batch of already-encoded events: built by concatenation so no event is encoded twice."""
    return '{"type":"batch","events":[' + ",".join(encoded_events) + "]}"


def error(
    code: ErrorCode,
    message: str,
    *,
    request_id: str,
    action: str | None = None,
    retry_after_ms: int | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message}
    if action is not None:
        frame["action"] = action
    if retry_after_ms is not None:
        frame["retryAfterMs"] = retry_after_ms
    frame["requestId"] = request_id
    return frame


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
