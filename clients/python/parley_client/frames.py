"""The frames of protocol v1 as TypedDicts: what Parley sends, field for field (docs/protocol.md).

They are plain dicts at run time (what `json.loads` gives); the types let mypy check a bot's code. A
union narrows on `type`: after `if frame["type"] == "message":` the frame is a MessageEvent.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

# A frame as received: a JSON object with a string `type` (batches already unpacked). Frames of types
# this version does not know (a newer server's) stay plain dicts.
Frame = dict[str, Any]


class User(TypedDict):
    id: str
    name: str


class Message(TypedDict):
    id: str  # 17 digits: string order is time order
    channel: str
    ts: str  # ISO-8601 UTC with milliseconds
    user: User
    text: str
    clientMsgId: NotRequired[str]
    threadId: NotRequired[str]


class ChannelInfo(TypedDict):
    id: str  # a public channel's name, or `name.<suffix>` for a private one: what frames address
    name: str
    private: bool
    invite: Literal["members", "creator"]


class ChannelListing(ChannelInfo):
    member: bool


# ---- replies: one per request (typing has none unless refused) ---------------------------------------


class Joined(TypedDict):
    type: Literal["joined"]
    channel: str
    messages: list[Message]
    recovered: bool
    presence: list[User]
    presenceMore: bool


class Left(TypedDict):
    type: Literal["left"]
    channel: str
    membership: NotRequired[bool]
    user: NotRequired[str]


class Ack(TypedDict):
    type: Literal["ack"]
    clientMsgId: str | None
    id: str
    ts: str


class History(TypedDict):
    type: Literal["history"]
    channel: str
    messages: list[Message]
    hasMore: bool


class PresencePage(TypedDict):
    type: Literal["presence"]
    channel: str
    users: list[User]
    next: str | None


class Heartbeat(TypedDict):
    type: Literal["heartbeat"]
    ts: str


class ChannelCreated(TypedDict):
    type: Literal["channel_created"]
    channel: ChannelInfo


class Invited(TypedDict):
    type: Literal["invited"]
    channel: str
    user: str


class Channels(TypedDict):
    type: Literal["channels"]
    channels: list[ChannelListing]
    next: str | None


class Error(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    action: NotRequired[str]
    retryAfterMs: NotRequired[int]
    requestId: str


class Gateway(TypedDict):
    """Anything that is not a JSON object with a `type`: API Gateway's own answers such as
    `{"message": "Forbidden", ...}` or `{"message": "Internal server error", ...}`."""

    type: Literal["gateway"]
    message: str
    connectionId: NotRequired[str]
    requestId: NotRequired[str]


# ---- pushed events ---------------------------------------------------------------------------------


class MessageEvent(Message):
    type: Literal["message"]


class TypingEvent(TypedDict):
    type: Literal["typing"]
    id: str
    channel: str
    user: User


class PresenceDiff(TypedDict):
    type: Literal["presence_diff"]
    id: str
    channel: str
    joins: list[User]
    leaves: list[User]


Reply = Joined | Left | Ack | History | PresencePage | Heartbeat | ChannelCreated | Invited | Channels | Error
Event = MessageEvent | TypingEvent | PresenceDiff
