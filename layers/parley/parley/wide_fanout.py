"""Two-level fan-out for wide channels: the stream consumer hands chunks of recipients to an SQS FIFO
queue, and parallel chunk workers post them (docs/scaling.md, "Two-level fan-out").

Order. A connection must get a channel's events in stream order. Each connection belongs to one of a
fixed number of message groups of its channel, chosen by a stable hash of its connection id
(`group_of`), so it is in the same group whatever the channel's size; SQS FIFO hands one group's
messages to one worker at a time, in the order they were sent. A group's messages are sent in order,
and a group whose send failed gets no later message from this batch (the stream record is reported
failed and the retry sends the group's messages again, in order). The number of groups is fixed per
deployment rather than derived from the channel's size, because a connection that moved group when
the channel grew could get a later event (its new group) before an earlier one (its old group).

At least once. A stream retry re-sends every chunk of its record: the FIFO deduplication id (a hash of
the body) drops the copies SQS already has within its 5-minute window, and beyond that clients drop
repeats by event id (every event carries an `id`). A worker that could not deliver its chunk to every
recipient reports the SQS message failed; SQS hands it back (in order, before the group's later
messages) and, after `maxReceiveCount`, moves it to the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from parley.fanout import PlannedEvent, frames_for
from parley.models import Subscriber
from parley.notify import Notifier, PostOutcome

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

logger = Logger(child=True)

# SQS refuses a message body over 256 KiB (262,144 bytes). A chunk stays a little under it.
SQS_MAX_MESSAGE_BYTES = 262_144
CHUNK_MAX_BYTES = SQS_MAX_MESSAGE_BYTES - 2_144
# The events of one message take at most this much of it (JSON-escaped); the rest is recipients. An
# event is at most protocol.FRAME_BUDGET (100 KB) before escaping.
EVENTS_MAX_BYTES = 160_000
SEND_BATCH_ENTRIES = 10  # SendMessageBatch takes at most 10 messages
# A channel handed off stays on the two-level path this long after its last hand-off, even if it drops
# to the threshold: an event posted directly could otherwise overtake its predecessors still queued.
STICKY_S = 300.0


@dataclass(frozen=True, slots=True)
class WideSettings:
    """`threshold` 0 disables the two-level fan-out (so does an empty queue URL)."""

    threshold: int
    chunk_size: int
    groups: int
    queue_url: str

    def applies(self, subscribers: int) -> bool:
        return bool(self.queue_url) and self.threshold > 0 and subscribers > self.threshold


def group_of(connection_id: str, groups: int) -> int:
    """A connection's message group in any channel: stable across invocations, containers, deploys."""
    digest = hashlib.blake2b(connection_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % groups


class ChunkEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(min_length=2)  # the encoded event, exactly as the small-channel path posts it
    skip: str | None = None  # a user not to send it to (the typist of a typing event)


class Chunk(BaseModel):
    """One SQS message: some events of a channel, in order, for some of its connections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    workspace: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    group: int = Field(ge=0)
    events: list[ChunkEvent] = Field(min_length=1)
    to: list[tuple[str, str]] = Field(min_length=1)  # (connection id, user id)

    def body(self) -> str:
        return self.model_dump_json()

    def group_id(self) -> str:
        # MessageGroupId allows 128 characters: a hash of the channel keeps long names within it.
        key = hashlib.blake2b(f"{self.workspace}#{self.channel}".encode(), digest_size=12).hexdigest()
        return f"{key}#{self.group}"


def _event_bytes(event: ChunkEvent) -> int:
    return len(event.model_dump_json().encode("utf-8")) + 1


def _recipient_bytes(connection_id: str, user_id: str) -> int:
    return len(json.dumps([connection_id, user_id]).encode("utf-8")) + 1


def _event_slices(events: list[ChunkEvent]) -> Iterator[list[ChunkEvent]]:
    """Consecutive runs of events, each within EVENTS_MAX_BYTES (an event larger alone is one run)."""
    run: list[ChunkEvent] = []
    size = 0
    for event in events:
        n = _event_bytes(event)
        if run and size + n > EVENTS_MAX_BYTES:
            yield run
            run, size = [], 0
        run.append(event)
        size += n
    if run:
        yield run


def plan_chunks(
    workspace: str,
    channel: str,
    events: list[PlannedEvent],
    subscribers: list[Subscriber],
    *,
    chunk_size: int,
    groups: int,
) -> dict[int, list[Chunk]]:
    """Each group's messages, in the order they must be sent and posted.

    A group's recipients (in subscriber order) are cut into chunks of at most `chunk_size`, and fewer
    when their ids would not fit the message with its events. Events too large for one message with
    the others are cut into consecutive slices: every slice goes to every chunk of the group before the
    next slice does, so a connection gets them in order.
    """
    if chunk_size < 1 or groups < 1:
        raise ValueError("chunk_size and groups must be at least 1")
    if not events or not subscribers:
        return {}
    wire = [ChunkEvent(data=e.encoded, skip=e.skip_user) for e in events]
    members: dict[int, list[tuple[str, str]]] = {}
    for sub in subscribers:
        members.setdefault(group_of(sub.connection_id, groups), []).append((sub.connection_id, sub.user_id))
    envelope = len(
        Chunk(workspace=workspace, channel=channel, group=groups, events=wire[:1], to=[("", "")]).body()
    )
    envelope -= _event_bytes(wire[0]) + _recipient_bytes("", "")
    planned: dict[int, list[Chunk]] = {}
    for slice_ in _event_slices(wire):
        room = CHUNK_MAX_BYTES - envelope - sum(_event_bytes(e) for e in slice_)
        for group in sorted(members):
            for to in _recipient_runs(members[group], chunk_size, room):
                chunk = Chunk(workspace=workspace, channel=channel, group=group, events=slice_, to=to)
                planned.setdefault(group, []).append(chunk)
    return planned


def _recipient_runs(
    recipients: list[tuple[str, str]], chunk_size: int, room: int
) -> Iterator[list[tuple[str, str]]]:
    run: list[tuple[str, str]] = []
    size = 0
    for connection_id, user_id in recipients:
        n = _recipient_bytes(connection_id, user_id)
        if n > room:
            raise ValueError("an event is too large to carry in a fan-out chunk")
        if run and (len(run) >= chunk_size or size + n > room):
            yield run
            run, size = [], 0
        run.append((connection_id, user_id))
        size += n
    if run:
        yield run


# ---------------------------------------------------------------- first level: enqueue


class ChunkQueue(Protocol):
    def send_batch(self, chunks: list[Chunk]) -> list[bool]:
        """Send up to 10 chunks in one call; for each, whether SQS took it."""
        ...


class SqsChunkQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send_batch(self, chunks: list[Chunk]) -> list[bool]:
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for i, chunk in enumerate(chunks):
            body = chunk.body()
            entries.append(
                {
                    "Id": str(i),
                    "MessageBody": body,
                    "MessageGroupId": chunk.group_id(),
                    # the same chunk sent again (a retried stream record) is dropped for 5 minutes
                    "MessageDeduplicationId": hashlib.sha256(body.encode("utf-8")).hexdigest(),
                }
            )
        try:
            response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError):
            logger.exception("fan-out chunks not enqueued", extra={"chunks": len(chunks)})
            return [False] * len(chunks)
        failed = {f["Id"] for f in response.get("Failed", [])}
        if failed:
            logger.warning("fan-out chunks refused", extra={"failed": response.get("Failed", [])})
        return [str(i) not in failed for i in range(len(chunks))]


@dataclass(slots=True)
class HandOff:
    chunks: int = 0
    sent: int = 0
    complete: bool = True


class WideFanout:
    """Hands a wide channel's events to the chunk queue instead of posting them."""

    def __init__(
        self,
        settings: WideSettings,
        queue: ChunkQueue,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.executor = executor
        self._clock = clock
        self._handed: dict[tuple[str, str], float] = {}  # channel -> when it was last handed off
        self._lock = threading.Lock()

    def applies(self, subscribers: int, channel: tuple[str, str] | None = None) -> bool:
        """Above the threshold; or, for a channel handed off within STICKY_S, any size (its earlier
        events may still be queued, and a direct post would overtake them). The memory is this
        container's: a stream shard is read by one invocation at a time, usually in the same container;
        docs/scaling.md says what remains."""
        if self.settings.applies(subscribers):
            return True
        if channel is None or not self.settings.queue_url or self.settings.threshold <= 0:
            return False
        with self._lock:
            last = self._handed.get(channel)
            return last is not None and self._clock() - last < STICKY_S

    def hand_off(
        self, workspace: str, channel: str, events: list[PlannedEvent], subscribers: list[Subscriber]
    ) -> HandOff:
        """Enqueue every chunk; `complete` is False if any was not (the stream record is then retried).

        Rounds: each round sends the next chunk of every group still going, ten to a call, the calls
        concurrently. A group appears once per round, so concurrent calls cannot reorder it, and a group
        whose chunk was refused sends nothing more: its retry starts again from its first chunk."""
        planned = plan_chunks(
            workspace,
            channel,
            events,
            subscribers,
            chunk_size=self.settings.chunk_size,
            groups=self.settings.groups,
        )
        result = HandOff(chunks=sum(len(c) for c in planned.values()))
        now = self._clock()
        with self._lock:
            self._handed = {k: t for k, t in self._handed.items() if now - t < STICKY_S}
            self._handed[(workspace, channel)] = now
        pending = {group: iter(chunks) for group, chunks in planned.items()}
        while pending:
            round_: list[tuple[int, Chunk]] = []
            for group, chunks in list(pending.items()):
                chunk = next(chunks, None)
                if chunk is None:
                    del pending[group]
                else:
                    round_.append((group, chunk))
            if not round_:
                break
            calls = [round_[i : i + SEND_BATCH_ENTRIES] for i in range(0, len(round_), SEND_BATCH_ENTRIES)]
            answers = self.executor.map(lambda call: self.queue.send_batch([c for _, c in call]), calls)
            for call, oks in zip(calls, answers, strict=True):
                for (group, _), ok in zip(call, oks, strict=True):
                    if ok:
                        result.sent += 1
                    else:
                        result.complete = False
                        pending.pop(group, None)
        return result


# ---------------------------------------------------------------- second level: post a chunk


def _jobs(chunk: Chunk) -> list[tuple[str, str, list[tuple[str, list[PlannedEvent]]]]]:
    """(connection id, user id, frames) per recipient; recipients wanting the same events share frames."""
    events = [PlannedEvent(e.data, [], skip_user=e.skip) for e in chunk.events]
    skippers = {e.skip_user for e in events if e.skip_user is not None}
    frame_cache: dict[str | None, list[tuple[str, list[PlannedEvent]]]] = {}
    jobs: list[tuple[str, str, list[tuple[str, list[PlannedEvent]]]]] = []
    for connection_id, user_id in chunk.to:
        key = user_id if user_id in skippers else None
        frames = frame_cache.get(key)
        if frames is None:
            wanted = [e for e in events if e.skip_user != user_id]
            frames = frame_cache[key] = frames_for(wanted) if wanted else []
        if frames:
            jobs.append((connection_id, user_id, frames))
    return jobs


@dataclass(slots=True)
class ChunkReport:
    posts: int = 0
    deliveries: int = 0
    throttled: int = 0
    failed: int = 0  # connections that did not get every frame (throttled or failed): retry the chunk
    gone: list[tuple[str, str]] = field(default_factory=list)  # (connection id, user id)

    @property
    def complete(self) -> bool:
        return self.failed == 0


class ChunkWorker:
    """Posts one chunk through the same notifier and per-connection rules as `Fanout.deliver`."""

    def __init__(
        self,
        *,
        notifier: Notifier,
        executor: Executor,
        forget_gone: Callable[[str, list[tuple[str, str, str]]], None],
    ) -> None:
        self.notifier = notifier
        self.executor = executor
        self._forget_gone = forget_gone

    def deliver(self, chunk: Chunk) -> ChunkReport:
        jobs = _jobs(chunk)
        report = ChunkReport()
        results = self.executor.map(lambda job: self._post_in_order(job[0], job[2]), jobs)
        for (connection_id, user_id, frames), outcomes in zip(jobs, results, strict=True):
            for (_, carried), outcome in zip(frames, outcomes, strict=True):
                if outcome is None:
                    continue
                report.posts += 1
                if outcome is PostOutcome.DELIVERED:
                    report.deliveries += len(carried)
                elif outcome is PostOutcome.THROTTLED:
                    report.throttled += 1
            first_miss = next((o for o in outcomes if o is not PostOutcome.DELIVERED), None)
            if first_miss is PostOutcome.GONE:
                report.gone.append((connection_id, user_id))  # a gone connection is no failure
            elif first_miss is not None:
                report.failed += 1
        for connection_id, user_id in report.gone:
            try:
                self._forget_gone(connection_id, [(chunk.workspace, chunk.channel, user_id)])
            except Exception:  # TTL and the sweeper are the backstop; a gone connection is no failure
                logger.exception(
                    "stale connection clean-up failed", extra={"stale_connection": connection_id}
                )
        return report

    def _post_in_order(
        self, connection_id: str, frames: list[tuple[str, list[PlannedEvent]]]
    ) -> list[PostOutcome | None]:
        """As `Fanout._post_in_order`: stop at the first frame not delivered (None for those not sent)."""
        outcomes: list[PostOutcome | None] = []
        for data, _ in frames:
            outcome = self.notifier.post(connection_id, data)
            outcomes.append(outcome)
            if outcome is not PostOutcome.DELIVERED:
                break
        return outcomes + [None] * (len(frames) - len(outcomes))
