"""Wire protocol v1: the client frames Parley accepts and the frames it sends. Defined once, here.

docs/protocol.md is checked against this module by tests/unit/test_protocol_doc.py, and the JS client
by tests/unit/test_web_protocol_sync.py. It is over 400 lines on purpose: every frame, limit and the
frame budget in one module is what lets those checks read one source of truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from parley.errors import BadRequest, ErrorCode
from parley.models import Channel, ChannelListing, Message, ReactionChange, ReactionSummary, User
from parley.names import user_id_problem
from parley.reaction_names import reaction_name_problem

MAX_TEXT = 4000
# A text's UTF-8 bytes as Parley sends it, inside a JSON string (a quote or a newline counts 2 bytes,
# another control character 6): 4000 emoji fit, 4000 escaped control characters do not.
MAX_TEXT_BYTES = 16_000
MAX_CLIENT_MSG_ID = 64
JOIN_RECENT = 50
RECOVER_MAX = 100
# A re-join with `since` also repeats up to this many messages of this long before `since`: DynamoDB may
# interleave the stream records of different writes, so a client can see a message before a lower id
# that it has not seen yet (chat.Chat.join).
RECOVER_OVERLAP = 20
RECOVER_OVERLAP_MS = 10_000
HISTORY_DEFAULT = 50
HISTORY_MAX = 100
# `joined` lists this many present users at most (plus the joiner); `presence` pages through the rest.
JOIN_PRESENCE_MAX = 100
PRESENCE_MAX = 100
THREAD_DEFAULT = 50
THREAD_MAX = 100
# API Gateway refuses any WebSocket message over 128 KB, route responses and @connections posts alike,
# and the quota cannot be raised. Every frame Parley sends is built to at most this many UTF-8 bytes,
# as `encode` writes it; lists are cut to fit (see `fit`).
FRAME_BUDGET = 100_000
# `joined` gives its presence list at most this share of the budget; its messages get the rest.
JOIN_PRESENCE_BUDGET = FRAME_BUDGET // 2
ERROR_MESSAGE_MAX = 1000
# Distinct reaction names on one message, and names one user may put on one message (parley.reacting).
MAX_REACTIONS_PER_MESSAGE = 50
MAX_REACTIONS_PER_USER = 20


def _no_lone_surrogates(value: Any) -> Any:
    # JSON may carry lone surrogates (\ud800); they cannot be stored as UTF-8, so refuse them up front.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _user_id(value: str) -> str:
    # the authorizer's rule for `sub` (parley.names), so any user id a token carries is one a frame may name
    problem = user_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def text_bytes(value: str) -> int:
    """A text's bytes as sent: its UTF-8 inside a JSON string, escapes included, quotes excluded."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8")) - 2


def _reaction_name(value: str) -> str:
    problem = reaction_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _within_text_bytes(value: str) -> str:
    if text_bytes(value) > MAX_TEXT_BYTES:
        raise ValueError(f"must be at most {MAX_TEXT_BYTES} bytes of UTF-8 as sent in JSON")
    return value


# Constraints first, so their errors speak of characters (after an AfterValidator they count "items").
_Unicode = BeforeValidator(_no_lone_surrogates)
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,80}$")]
# What frames address a channel by: its id, the name for a public channel, `name.<10 of [a-z0-9]>` for
# a private one (parley.ids.private_channel_id). `.` is not in names, so the two never meet.
ChannelId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,80}(\.[a-z0-9]{10})?$")]
MessageId = Annotated[str, StringConstraints(pattern=r"^[0-9]{17}$")]
# The pattern is web/protocol.js's USER_ID; _user_id adds the rest of parley.names' rule.
UserId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s#]+$"),
    _Unicode,
    AfterValidator(_user_id),
]
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT),
    _Unicode,
    AfterValidator(_within_text_bytes),
]
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CLIENT_MSG_ID), _Unicode]
# A short name or one emoji (parley.reaction_names); 64 characters bounds the work before the rule runs.
ReactionName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), _Unicode, AfterValidator(_reaction_name)
]


class Frame(BaseModel):
    """A client frame. Strict: "1" is not a number and 1 is not a string. Unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    action: str


class JoinFrame(Frame):
    action: Literal["join"]
    channel: ChannelId
    since: MessageId | None = None


class LeaveFrame(Frame):
    """Unsubscribe this connection; with `membership`, also stop being a member (a private channel then
    needs a new invite); with `user`, the channel's creator removes that member (implies membership)."""

    action: Literal["leave"]
    channel: ChannelId
    membership: bool = False
    user: UserId | None = None


class MessageFrame(Frame):
    action: Literal["message"]
    channel: ChannelId
    text: Text
    client_msg_id: ClientMsgId | None = Field(default=None, alias="clientMsgId")
    thread_id: MessageId | None = Field(default=None, alias="threadId")


class EditFrame(Frame):
    """Replace the text of one's own message. `version`, when given, is the version the edit was made
    from: if the message changed since, the edit is refused (`conflict`) rather than overwrite it."""

    action: Literal["edit"]
    channel: ChannelId
    message_id: MessageId = Field(alias="messageId")
    text: Text
    version: Annotated[int, Field(ge=0)] | None = None


class DeleteFrame(Frame):
    """Delete one's own message (a workspace admin: anyone's); what stays is a tombstone without text."""

    action: Literal["delete"]
    channel: ChannelId
    message_id: MessageId = Field(alias="messageId")


class ThreadFrame(Frame):
    """A page of a thread's replies, oldest first, after the reply `after` (none: from the start)."""

    action: Literal["thread"]
    channel: ChannelId
    thread_id: MessageId = Field(alias="threadId")
    after: MessageId | None = None
    limit: Annotated[int, Field(ge=1, le=THREAD_MAX)] = THREAD_DEFAULT


class TypingFrame(Frame):
    action: Literal["typing"]
    channel: ChannelId


class HistoryFrame(Frame):
    action: Literal["history"]
    channel: ChannelId
    before: MessageId | None = None
    limit: Annotated[int, Field(ge=1, le=HISTORY_MAX)] = HISTORY_DEFAULT


class PresenceFrame(Frame):
    action: Literal["presence"]
    channel: ChannelId
    after: UserId | None = None
    limit: Annotated[int, Field(ge=1, le=PRESENCE_MAX)] = PRESENCE_MAX


class HeartbeatFrame(Frame):
    action: Literal["heartbeat"]


class CreateChannelFrame(Frame):
    action: Literal["create_channel"]
    name: ChannelName
    private: bool = False
    # who may invite to it: any member (the default) or its creator only
    invite: Literal["members", "creator"] = "members"


class InviteFrame(Frame):
    action: Literal["invite"]
    channel: ChannelId
    user: UserId


class ChannelsFrame(Frame):
    action: Literal["channels"]
    after: ChannelId | None = None


class ReactFrame(Frame):
    """Add a reaction to a message of a joined channel, or with `remove` take it back. Idempotent."""

    action: Literal["react"]
    channel: ChannelId
    message_id: MessageId = Field(alias="messageId")
    name: ReactionName
    remove: bool = False


# open_dm names 1 to this many other users; with the caller a DM has at most DM_MAX_USERS + 1 members
DM_MAX_USERS = 8


class OpenDmFrame(Frame):
    """Open (or find) the direct message between the caller and `users` (the caller may be listed)."""

    action: Literal["open_dm"]
    users: Annotated[list[UserId], Field(min_length=1, max_length=DM_MAX_USERS)]


class MarkReadFrame(Frame):
    """Move the caller's read mark in a channel to `messageId` (never back)."""

    action: Literal["mark_read"]
    channel: ChannelId
    message_id: MessageId = Field(alias="messageId")


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
    "react": ReactFrame,
    "edit": EditFrame,
    "delete": DeleteFrame,
    "thread": ThreadFrame,
    "open_dm": OpenDmFrame,
    "mark_read": MarkReadFrame,
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
    # Each of these only once it applies, so a message never edited, deleted, replied to or reacted to
    # is sent exactly as before (existing clients ignore fields they do not know).
    if message.version:
        wire["version"] = message.version
    if message.edited_at is not None:
        wire["editedAt"] = message.edited_at
    if message.deleted_at is not None:
        wire["deleted"] = True
        wire["deletedAt"] = message.deleted_at
        wire["text"] = ""
    if message.thread_version:
        wire.update(thread_wire(message))
    if message.reactions is not None:
        wire |= reactions_wire(message.reactions)
    if message.app is not None:
        wire["app"] = message.app
    if message.mentions:
        wire["mentions"] = list(message.mentions)
    return wire


def thread_wire(parent: Message) -> dict[str, Any]:
    """A thread's summary, as its parent carries it."""
    return {
        "replyCount": parent.reply_count,
        "lastReplyAt": parent.last_reply_at,
        "threadVersion": parent.thread_version,
    }


def reactions_wire(summary: ReactionSummary) -> dict[str, Any]:
    """`reactions` (each name with a count, and `me` when the reader used it) and `reactionsVersion`,
    for a message that has ever had a reaction: a client keeps the newest version (docs/protocol.md)."""
    return {
        "reactions": [{"name": n, "count": c, "me": n in summary.mine} for n, c in summary.counts],
        "reactionsVersion": summary.version,
    }


def channel_wire(channel: Channel) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": channel.id,
        "name": channel.name,
        "private": channel.private,
        "invite": channel.invite_policy,
    }
    if channel.dm:
        wire |= {"dm": True, "members": [user_wire(u) for u in channel.members]}
    return wire


def listing_wire(listing: ChannelListing) -> dict[str, Any]:
    """A channel of the `channels` list: with `unread` and `mentions` where the caller is a member."""
    wire = channel_wire(listing.channel) | {"member": listing.member}
    if listing.unread is not None:
        wire["unread"] = listing.unread
    if listing.mentions is not None:
        wire["mentions"] = listing.mentions
    return wire


def joined(
    channel: str,
    messages: list[Message],
    recovered: bool,
    presence: list[User],
    *,
    presence_more: bool,
    recovering: bool = False,
    budget: int = FRAME_BUDGET,
) -> dict[str, Any]:
    """`joined`, cut to the budget: the first present users within JOIN_PRESENCE_BUDGET (more left out:
    `presenceMore`), then the newest messages that fit the rest. Messages left out of a recovery
    (`recovering`: the join had `since`) make `recovered` false; a join without `since` recovers
    nothing, so it stays true and the older messages are read with `history` as usual.
    """
    users = [user_wire(u) for u in presence]
    wires = [message_wire(m) for m in messages]

    def build(shown_users: int, shown_messages: int) -> dict[str, Any]:
        cut_messages = shown_messages < len(wires)
        return {
            "type": "joined",
            "channel": channel,
            "messages": wires[len(wires) - shown_messages :],
            "recovered": recovered and not (recovering and cut_messages),
            "presence": users[:shown_users],
            "presenceMore": presence_more or shown_users < len(users),
        }

    with_users = fit_frame(
        lambda n: build(n, 0), users, keep="first", budget=min(budget, JOIN_PRESENCE_BUDGET)
    )
    shown_users = len(with_users["presence"])
    return fit_frame(lambda n: build(shown_users, n), wires, keep="last", budget=budget)


def left(channel: str, *, membership: bool = False, user: str | None = None) -> dict[str, Any]:
    """`left`; `membership` when the membership ended too, `user` when the creator removed that member."""
    frame: dict[str, Any] = {"type": "left", "channel": channel}
    if membership:
        frame["membership"] = True
    if user is not None:
        frame["user"] = user
    return frame


def ack(message: Message) -> dict[str, Any]:
    return {"type": "ack", "clientMsgId": message.client_msg_id, "id": message.id, "ts": message.ts}


def edited(message: Message) -> dict[str, Any]:
    """The answer to `edit`: the version the message now has (its `message_updated` carries the same)."""
    return {
        "type": "edited",
        "channel": message.channel,
        "messageId": message.id,
        "version": message.version,
        "editedAt": message.edited_at,
    }


def deleted(message: Message) -> dict[str, Any]:
    """The answer to `delete` (also to a repeated one: the tombstone's version)."""
    return {
        "type": "deleted",
        "channel": message.channel,
        "messageId": message.id,
        "version": message.version,
        "deletedAt": message.deleted_at,
    }


def thread(
    parent: Message, replies: list[Message], has_more: bool, *, budget: int = FRAME_BUDGET
) -> dict[str, Any]:
    """A page of a thread, oldest first, with its parent (a tombstone if deleted) and its summary;
    `next` is the cursor for the following page (the last reply's id), or null. The last replies are
    left out to fit the budget, and then `next` is set."""
    parent_wire = message_wire(parent)
    wires = [message_wire(m) for m in replies]

    def build(n: int) -> dict[str, Any]:
        more = has_more or n < len(wires)
        return {
            "type": "thread",
            "channel": parent.channel,
            "threadId": parent.id,
            "parent": parent_wire,
            "messages": wires[:n],
            "next": wires[n - 1]["id"] if more and n else None,
        }

    return fit_frame(build, wires, keep="first", budget=budget)


def history(
    channel: str, messages: list[Message], has_more: bool, *, budget: int = FRAME_BUDGET
) -> dict[str, Any]:
    """A page of messages, oldest first; the oldest are left out to fit the budget, and then `hasMore`."""
    wires = [message_wire(m) for m in messages]

    def build(n: int) -> dict[str, Any]:
        return {
            "type": "history",
            "channel": channel,
            "messages": wires[len(wires) - n :],
            "hasMore": has_more or n < len(wires),
        }

    return fit_frame(build, wires, keep="last", budget=budget)


def presence(
    channel: str, users: list[User], has_more: bool, *, budget: int = FRAME_BUDGET
) -> dict[str, Any]:
    """A page of present users; `next` is the cursor for the following page (the last id), or null.
    The last users are left out to fit the budget, and then `next` is set."""
    wires = [user_wire(u) for u in users]

    def build(n: int) -> dict[str, Any]:
        more = has_more or n < len(wires)
        return {
            "type": "presence",
            "channel": channel,
            "users": wires[:n],
            "next": wires[n - 1]["id"] if more and n else None,
        }

    return fit_frame(build, wires, keep="first", budget=budget)


def reacted(change: ReactionChange, *, changed: bool) -> dict[str, Any]:
    """The answer to `react`: `changed` is false when there was nothing to do (already so)."""
    return {
        "type": "reacted",
        "channel": change.channel,
        "messageId": change.message_id,
        "name": change.name,
        "added": change.added,
        "changed": changed,
    }


def reaction_event(change: ReactionChange, count: int, version: int) -> dict[str, Any]:
    """A reaction added or removed: the name's count after it, and the message's reaction version
    after it (one more on every change), so a client keeps the newest whatever order events come in."""
    return {
        "type": "reaction",
        "id": f"r{change.message_id}.{version}",
        "channel": change.channel,
        "messageId": change.message_id,
        "name": change.name,
        "count": count,
        "version": version,
        "user": user_wire(change.user),
        "added": change.added,
    }


def heartbeat(ts: str) -> dict[str, Any]:
    return {"type": "heartbeat", "ts": ts}


def channel_created(channel: Channel) -> dict[str, Any]:
    return {"type": "channel_created", "channel": channel_wire(channel)}


def invited(channel: str, user_id: str) -> dict[str, Any]:
    return {"type": "invited", "channel": channel, "user": user_id}


def channels(listings: list[ChannelListing], *, budget: int = FRAME_BUDGET) -> dict[str, Any]:
    """A page of the channel list, in id order; `next` is the id to send as `after` for the
    following page, or null when this page ends the list. Cut to the budget."""
    wires = [listing_wire(item) for item in listings]

    def build(n: int) -> dict[str, Any]:
        return {
            "type": "channels",
            "channels": wires[:n],
            "next": wires[n - 1]["id"] if n < len(wires) and n else None,
        }

    return fit_frame(build, wires, keep="first", budget=budget)


def dm_opened(channel: Channel) -> dict[str, Any]:
    """The answer to `open_dm`: the DM (created now or before), its members listed."""
    return {"type": "dm_opened", "channel": channel_wire(channel)}


def _read_state(kind: str, channel: str, message_id: str, unread: int, mentions: int) -> dict[str, Any]:
    return {"type": kind, "channel": channel, "messageId": message_id, "unread": unread, "mentions": mentions}


def marked_read(channel: str, message_id: str, unread: int, mentions: int) -> dict[str, Any]:
    """The answer to `mark_read`: the caller's read mark in a channel (never moved back) and what is
    left unread after it."""
    return _read_state("marked_read", channel, message_id, unread, mentions)


def read_event(channel: str, message_id: str, unread: int, mentions: int) -> dict[str, Any]:
    """The same, pushed to the caller's other connections when the mark moved."""
    return _read_state("read", channel, message_id, unread, mentions)


def message_event(message: Message) -> dict[str, Any]:
    return {"type": "message", **message_wire(message)}


def message_updated_event(message: Message) -> dict[str, Any]:
    """An edit: the message as it is now; a client keeps it unless it holds a higher `version`."""
    return {"type": "message_updated", **message_wire(message)}


def message_deleted_event(message: Message) -> dict[str, Any]:
    """A delete: the tombstone's id and version (and thread); no text."""
    event: dict[str, Any] = {
        "type": "message_deleted",
        "id": message.id,
        "channel": message.channel,
        "version": message.version,
        "deletedAt": message.deleted_at,
    }
    if message.thread_id is not None:
        event["threadId"] = message.thread_id
    return event


def thread_updated_event(parent: Message) -> dict[str, Any]:
    """A thread's summary changed (a reply was posted or deleted); ordered by `threadVersion`."""
    return {"type": "thread_updated", "id": parent.id, "channel": parent.channel, **thread_wire(parent)}


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


def presence_diff_events(
    event_id: str, channel: str, joins: list[User], leaves: list[User], *, budget: int = FRAME_BUDGET
) -> list[dict[str, Any]]:
    """One `presence_diff`, or several when it would not fit in one frame: each within the budget,
    joins before leaves, with ids `{event_id}-1`, `-2`, ... (stable, so a retried delivery dedupes)."""
    whole = presence_diff_event(event_id, channel, joins, leaves)
    if encoded_size(whole) <= budget:
        return [whole]
    pending = [(True, u) for u in joins] + [(False, u) for u in leaves]
    parts: list[dict[str, Any]] = []
    while pending:
        chunk, part_id = pending, f"{event_id}-{len(parts) + 1}"

        def build(n: int, chunk: list[tuple[bool, User]] = chunk, part_id: str = part_id) -> dict[str, Any]:
            shown = chunk[:n]
            return presence_diff_event(
                part_id, channel, [u for j, u in shown if j], [u for j, u in shown if not j]
            )

        part = fit_frame(build, [user_wire(u) for _, u in chunk], keep="first", budget=budget)
        taken = max(1, len(part["joins"]) + len(part["leaves"]))
        parts.append(build(taken))
        pending = pending[taken:]
    return parts


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
    # messages are ours and short; the cut only guarantees the budget whatever they quote
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message[:ERROR_MESSAGE_MAX]}
    if action is not None:
        frame["action"] = action
    if retry_after_ms is not None:
        frame["retryAfterMs"] = retry_after_ms
    frame["requestId"] = request_id
    return frame


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


# ---- the byte budget -----------------------------------------------------------------------------


def encoded_size(value: Any) -> int:
    """Bytes on the wire: the UTF-8 of exactly what `encode` writes for this frame (or part of one)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def fit(items: Sequence[Any], room: int, *, keep: Literal["first", "last"]) -> int:
    """How many of `items`, the wire objects of one JSON list, fit in `room` bytes, kept from the start
    of the list or from its end. Exact: `encode` writes a list as its items' encodings joined by ','."""
    ordered = items if keep == "first" else list(reversed(items))
    used = count = 0
    for item in ordered:
        cost = encoded_size(item) + (1 if count else 0)
        if used + cost > room:
            break
        used += cost
        count += 1
    return count


def fit_frame(
    build: Callable[[int], dict[str, Any]],
    items: Sequence[Any],
    *,
    keep: Literal["first", "last"],
    budget: int = FRAME_BUDGET,
) -> dict[str, Any]:
    """`build(n)` for the greatest n <= len(items) whose encoding fits in `budget` bytes.

    `build(n)` is the frame holding n of `items` (the first n or the last n, as `keep` says) with its
    flags and cursor set for n; they may change its size a little, so the result is measured again.
    """
    room = budget - encoded_size(build(0))
    n = fit(items, room, keep=keep)
    frame = build(n)
    while n > 0 and encoded_size(frame) > budget:
        n -= 1
        frame = build(n)
    return frame
