"""Fan-out: turn a batch of stream changes into one frame per connection and post them.

Planning is pure (records in, per-channel ordered events out); delivery does one Query of subscribers
per channel and one post per connection, concurrently. Failures are reported per stream record so
the event source mapping retries exactly what was not delivered; event ids make retries harmless.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from parley import protocol
from parley.change_events import change_events
from parley.errors import StoreError
from parley.models import User
from parley.notify import Notifier, PostOutcome
from parley.ports import Subscribers
from parley.store.items import message_from_item
from parley.store.reaction_items import change_from_image

if TYPE_CHECKING:
    from parley.wide_fanout import WideFanout

logger = Logger(child=True)

# API Gateway refuses posts over 128 KB: batch frames are packed to protocol's one frame budget.
MAX_FRAME_BYTES = protocol.FRAME_BUDGET
_BATCH_ENVELOPE = len(protocol.batch_frame([]).encode("utf-8"))

ChannelKey = tuple[str, str]  # (workspace, channel)


@dataclass(frozen=True, slots=True)
class StreamChange:
    """The parts of one DynamoDB stream record that fan-out needs (images already deserialised)."""

    sequence: str
    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    created_ms: int | None = None


@dataclass(slots=True)
class PlannedEvent:
    encoded: str
    sequences: list[str]
    skip_user: str | None = None  # typing events are not echoed to the typist
    sort_key: str = ""  # message id, for keeping messages in id order


@dataclass(slots=True)
class Plan:
    channels: dict[ChannelKey, list[PlannedEvent]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # sequences needing no broadcast


@dataclass(slots=True)
class Report:
    failed_sequences: set[str] = field(default_factory=set)
    posts: int = 0
    deliveries: int = 0  # events times recipients
    gone: set[str] = field(default_factory=set)
    # where each gone connection was subscribed: (workspace, channel, user id), for a complete clean-up
    gone_subscriptions: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    throttled: int = 0
    failed_posts: int = 0
    handed_off: int = 0  # recipients of wide channels, handed to the chunk workers (parley.wide_fanout)

    def record(
        self,
        connection_id: str,
        carried: list[PlannedEvent],
        outcome: PostOutcome | None,
        subscriptions: list[tuple[str, str, str]],
    ) -> None:
        """Count one frame for one connection; `None` is a frame not sent after an earlier one failed."""
        if outcome is None:
            if connection_id not in self.gone:  # for a gone connection there is nothing left to retry
                self.failed_sequences.update(s for e in carried for s in e.sequences)
            return
        self.posts += 1
        if outcome is PostOutcome.DELIVERED:
            self.deliveries += len(carried)
        elif outcome is PostOutcome.GONE:
            self.gone.add(connection_id)
            self.gone_subscriptions[connection_id] = subscriptions
        else:
            self.throttled += outcome is PostOutcome.THROTTLED
            self.failed_posts += 1
            self.failed_sequences.update(s for e in carried for s in e.sequences)


def plan(changes: Iterable[StreamChange]) -> Plan:
    result = Plan()
    events: dict[ChannelKey, list[PlannedEvent]] = defaultdict(list)
    presence: dict[ChannelKey, list[tuple[StreamChange, dict[str, Any], bool]]] = defaultdict(list)
    for change in changes:
        image = change.new_image if change.event_name != "REMOVE" else change.old_image
        kind = (image or {}).get("kind")
        if image is None or kind not in ("message", "typing", "presence", "reactions"):
            result.ignored.append(change.sequence)
            continue
        key = (str(image["workspace"]), str(image["channel"]))
        if kind == "message" and change.event_name == "INSERT":
            message = message_from_item(image)
            encoded = protocol.encode(protocol.message_event(message))
            events[key].append(PlannedEvent(encoded, [change.sequence], sort_key=message.id))
        elif kind == "message" and change.event_name == "MODIFY":
            changed = change_events(change.old_image, image)  # edits, deletes, thread summaries
            if not changed:
                result.ignored.append(change.sequence)
            events[key].extend(PlannedEvent(encoded, [change.sequence]) for encoded in changed)
        elif kind == "typing" and change.event_name in ("INSERT", "MODIFY"):
            user = User(str(image["userId"]), str(image["userName"]))
            encoded = protocol.encode(protocol.typing_event(change.event_id, key[1], user))
            events[key].append(PlannedEvent(encoded, [change.sequence], skip_user=user.id))
        elif kind == "reactions" and change.event_name in ("INSERT", "MODIFY"):
            events[key].append(_reaction_event(change, image))
        elif kind == "presence" and change.event_name in ("INSERT", "REMOVE"):
            presence[key].append((change, image, change.event_name == "INSERT"))
            events.setdefault(key, [])
        else:
            result.ignored.append(change.sequence)
    for key, transitions in presence.items():
        diffs = _presence_diffs(key[1], transitions)
        if not diffs:
            result.ignored.extend(c.sequence for c, _, _ in transitions)
        else:
            events[key].extend(diffs)
    result.channels = {key: _messages_in_id_order(evs) for key, evs in events.items() if evs}
    return result


def _reaction_event(change: StreamChange, image: dict[str, Any]) -> PlannedEvent:
    """A counts item changed: its last change, with the name's count and the message's version after it.
    Sorted after its message and in version order, so a batch never shows a reaction before its message."""
    reaction, count, version = change_from_image(image)
    encoded = protocol.encode(protocol.reaction_event(reaction, count, version))
    return PlannedEvent(encoded, [change.sequence], sort_key=f"{reaction.message_id}~{version:012d}")


def _presence_diffs(
    channel: str, transitions: list[tuple[StreamChange, dict[str, Any], bool]]
) -> list[PlannedEvent]:
    """Coalesce a channel's joins and leaves: a user who joined and left in one batch cancels out.

    Usually one event; several when the diff is too large for one frame, each carrying every
    transition's sequence (a failed part fails them all, and the retry re-sends the same ids)."""
    first: dict[str, bool] = {}
    last: dict[str, tuple[bool, User]] = {}
    for _, image, joined in transitions:
        user = User(str(image["userId"]), str(image.get("userName", image["userId"])))
        first.setdefault(user.id, joined)
        last[user.id] = (joined, user)
    joins = [u for uid, (j, u) in last.items() if j and first[uid]]
    leaves = [u for uid, (j, u) in last.items() if not j and not first[uid]]
    if not joins and not leaves:
        return []
    digest = hashlib.sha1("".join(c.event_id for c, _, _ in transitions).encode(), usedforsecurity=False)
    sequences = [c.sequence for c, _, _ in transitions]
    return [
        PlannedEvent(protocol.encode(event), list(sequences))
        for event in protocol.presence_diff_events("p" + digest.hexdigest()[:24], channel, joins, leaves)
    ]


def _messages_in_id_order(events: list[PlannedEvent]) -> list[PlannedEvent]:
    slots = [i for i, e in enumerate(events) if e.sort_key]
    ordered = sorted((events[i] for i in slots), key=lambda e: e.sort_key)
    result = list(events)
    for slot, event in zip(slots, ordered, strict=True):
        result[slot] = event
    return result


def frames_for(events: list[PlannedEvent]) -> list[tuple[str, list[PlannedEvent]]]:
    """One frame for one event; a batch frame for several, split to stay under the post size limit."""
    if len(events) == 1:
        return [(events[0].encoded, events)]
    frames: list[tuple[str, list[PlannedEvent]]] = []
    chunk: list[PlannedEvent] = []
    size = _BATCH_ENVELOPE - 1  # each event costs its bytes and a comma, but the first has none
    for event in events:
        n = len(event.encoded.encode("utf-8")) + 1
        if chunk and size + n > MAX_FRAME_BYTES:
            frames.append(_framed(chunk))
            chunk, size = [], _BATCH_ENVELOPE - 1
        chunk.append(event)
        size += n
    if chunk:
        frames.append(_framed(chunk))
    return frames


def _framed(chunk: list[PlannedEvent]) -> tuple[str, list[PlannedEvent]]:
    if len(chunk) == 1:
        return chunk[0].encoded, chunk
    return protocol.batch_frame([e.encoded for e in chunk]), chunk


class Fanout:
    def __init__(
        self, *, store: Subscribers, notifier: Notifier, executor: Executor, wide: WideFanout | None = None
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.executor = executor
        self.wide = wide  # channels above its threshold go to the two-level fan-out

    def _post_in_order(
        self, connection_id: str, frames: list[tuple[str, list[PlannedEvent]]]
    ) -> list[PostOutcome | None]:
        """Post a connection's frames in order and stop at the first not delivered: a later frame must
        not arrive before an earlier one that a retry will send again (None for the frames not sent)."""
        outcomes: list[PostOutcome | None] = []
        for data, _ in frames:
            outcome = self.notifier.post(connection_id, data)
            outcomes.append(outcome)
            if outcome is not PostOutcome.DELIVERED:
                break
        return outcomes + [None] * (len(frames) - len(outcomes))

    def deliver(self, work: Plan, now_s: int) -> Report:
        report = Report()
        per_connection: dict[str, list[PlannedEvent]] = defaultdict(list)
        subscribed: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for (workspace, channel), events in work.channels.items():
            try:
                subscribers = self.store.subscribers(workspace, channel, now_s)
            except StoreError:
                logger.exception("subscriber query failed", extra={"channel": channel})
                report.failed_sequences.update(s for e in events for s in e.sequences)
                continue
            if self.wide is not None and self.wide.applies(len(subscribers), (workspace, channel)):
                if not self.wide.hand_off(workspace, channel, events, subscribers).complete:
                    report.failed_sequences.update(s for e in events for s in e.sequences)
                report.handed_off += len(subscribers)
                continue
            for sub in subscribers:
                wanted = [e for e in events if e.skip_user != sub.user_id]
                per_connection[sub.connection_id].extend(wanted)
                subscribed[sub.connection_id].append((workspace, channel, sub.user_id))

        # Connections that share the same event list (most of a channel) share one encoded frame list.
        frame_cache: dict[tuple[int, ...], list[tuple[str, list[PlannedEvent]]]] = {}
        jobs: list[tuple[str, list[tuple[str, list[PlannedEvent]]]]] = []
        for connection_id, events in per_connection.items():
            if not events:
                continue
            signature = tuple(id(e) for e in events)
            frames = frame_cache.get(signature)
            if frames is None:
                frames = frame_cache[signature] = frames_for(events)
            jobs.append((connection_id, frames))

        # Connections in parallel; one connection's frames one after another, so they arrive in order.
        results = self.executor.map(lambda job: self._post_in_order(*job), jobs)
        for (connection_id, frames), outcomes in zip(jobs, results, strict=True):
            for (_, carried), outcome in zip(frames, outcomes, strict=True):
                report.record(connection_id, carried, outcome, subscribed[connection_id])
        return report
