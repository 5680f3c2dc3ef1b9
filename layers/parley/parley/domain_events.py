"""Domain events: MessagesTable stream records turned into EventBridge entries on Parley's bus.

What happened (a message created, edited or deleted, a member joined or left, a channel or workspace
created) is read from the stream, so it is told once per committed write whatever wrote it (a route,
the publish function, an admin script). Delivery is at least once: a batch that fails part-way is
retried by the event source mapping, so an event may be put twice. Every event carries `eventId` (the
stream record's eventID, the same on every redelivery) for consumers to drop repeats; EventBridge's own
`id` is new on every PutEvents and is no help for that. docs/events.md is the catalogue.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from parley import aws
from parley.config import settings
from parley.observability import MetricUnit, logger, metrics
from parley.protocol import channel_wire
from parley.store import keys
from parley.store.items import channel_from_item

SOURCE = "parley"
# PutEvents: at most 10 entries a call, and at most 256 KB for the entries of one call together (each
# entry's Source, DetailType, Detail and Resources in UTF-8, plus 14 bytes for a Time), so one entry
# is at most that too.
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
TIME_BYTES = 14
PUT_ATTEMPTS = 3

DETAIL_TYPES = (
    "message.created",
    "message.edited",
    "message.deleted",
    "member.joined",
    "member.left",
    "channel.created",
    "workspace.created",
)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    event_id: str  # the stream record's eventID: stable across redeliveries
    detail_type: str
    detail: dict[str, Any]
    time: datetime | None = None
    sequence: str = ""  # the stream record it came from (its failure fails that record)


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of one stream record the mapping reads (images already deserialised)."""

    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None
    sequence: str = ""
    time: datetime | None = None


# ---- records -> events (pure) ----------------------------------------------------------------------


def _user(image: Mapping[str, Any]) -> dict[str, str]:
    return {"id": str(image.get("userId", "")), "name": str(image.get("userName", ""))}


def _message(image: Mapping[str, Any]) -> dict[str, Any]:
    """The message as protocol.message_wire shows it, read leniently: a tombstone keeps no text."""
    wire: dict[str, Any] = {
        "id": str(image.get("id", "")),
        "channel": str(image.get("channel", "")),
        "ts": str(image.get("ts", "")),
        "user": _user(image),
    }
    optional = ("text", "clientMsgId", "threadId", "app", "editedAt", "deletedAt", "mentions")
    wire |= {name: image[name] for name in optional if image.get(name) is not None}
    return wire


def _json_default(value: Any) -> Any:
    # stream images hold Decimal for numbers (an `editedAt` in ms, say)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _detail_json(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def events_of(record: Record) -> list[DomainEvent]:
    """The domain events of one MessagesTable record: none for heads, counters and other writes."""
    image = record.new_image if record.event_name != "REMOVE" else record.old_image
    if not image:
        return []
    kind = image.get("kind")
    detail_type = _detail_type(str(kind), record)
    if detail_type is None:
        return []
    pk = str(image.get("PK", ""))
    detail: dict[str, Any] = {"eventId": record.event_id}
    if kind == "message":
        detail |= {"workspace": str(image.get("workspace", "")), "channel": str(image.get("channel", ""))}
        message = _message(image)
        if detail_type == "message.deleted":
            message.pop("text", None)  # a deleted message's text is not kept, so not told either
        detail["message"] = message
    elif kind == "member":
        workspace, user_id = keys.member_of_pk(pk)
        detail |= {"workspace": workspace, "channel": str(image.get("channel", "")), "user": user_id}
    elif kind == "channel":
        workspace = keys.workspace_of_pk(pk)
        detail |= {"workspace": workspace, "channel": channel_wire(channel_from_item(workspace, dict(image)))}
    else:  # workspace
        detail["workspace"] = keys.workspace_of_pk(pk)
    return [DomainEvent(record.event_id, detail_type, detail, record.time, record.sequence)]


_KIND_EVENTS = {
    ("member", "INSERT"): "member.joined",
    ("member", "REMOVE"): "member.left",
    ("channel", "INSERT"): "channel.created",
    ("workspace", "INSERT"): "workspace.created",
    ("message", "INSERT"): "message.created",
    ("message", "REMOVE"): "message.deleted",
}


def _detail_type(kind: str, record: Record) -> str | None:
    if kind != "message" or record.event_name != "MODIFY":
        return _KIND_EVENTS.get((kind, record.event_name))
    # edits and deletes rewrite the message item (parley's `edit` and `delete`)
    new, old = record.new_image or {}, record.old_image or {}
    # a tombstone carries `deletedAt` and no text (parley.message_changes)
    if new.get("deletedAt") is not None and old.get("deletedAt") is None:
        return "message.deleted"
    if new.get("editedAt") is not None and new.get("editedAt") != old.get("editedAt"):
        return "message.edited"
    return None  # a reply count, a reaction total: not an event of its own


# ---- events -> PutEvents entries -----------------------------------------------------------------


def entry_of(event: DomainEvent, bus: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Source": SOURCE,
        "DetailType": event.detail_type,
        "Detail": _detail_json(event.detail),
        "EventBusName": bus,
    }
    if event.time is not None:
        entry["Time"] = event.time
    if entry_size(entry) > MAX_REQUEST_BYTES:
        # Cannot happen with the protocol's limits (16 KB of text); should it, the event still goes,
        # without the text, so a consumer learns of it and can read the message back.
        message = dict(event.detail.get("message") or {})
        message.pop("text", None)
        slim = event.detail | {"message": message, "textOmitted": True}
        entry["Detail"] = _detail_json(slim)
    return entry


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it (its "calculating PutEvents event entry size" rule)."""
    size = sum(len(str(entry.get(f, "")).encode("utf-8")) for f in ("Source", "DetailType", "Detail"))
    size += sum(len(str(r).encode("utf-8")) for r in entry.get("Resources") or [])
    return size + (TIME_BYTES if entry.get("Time") is not None else 0)


def chunks(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive groups of at most MAX_ENTRIES entries and MAX_REQUEST_BYTES together, in order."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) == MAX_ENTRIES or used + size > MAX_REQUEST_BYTES):
            groups.append(current)
            current, used = [], 0
        current.append(entry)
        used += size
    if current:
        groups.append(current)
    return groups


class EventsClient(Protocol):
    def put_events(self, *, Entries: list[dict[str, Any]]) -> Any: ...


class Publisher:
    """Puts events on the bus, retrying the entries PutEvents reports failed (FailedEntryCount)."""

    def __init__(
        self,
        client: EventsClient,
        bus: str,
        *,
        attempts: int = PUT_ATTEMPTS,
        backoff: Callable[[int], None] = lambda attempt: None,
    ) -> None:
        self.client = client
        self.bus = bus
        self.attempts = attempts
        self.backoff = backoff

    def publish(self, events: Iterable[DomainEvent]) -> list[DomainEvent]:
        """Put every event; the ones still not accepted after `attempts` tries are returned."""
        pending = list(events)
        for attempt in range(self.attempts):
            if not pending:
                break
            if attempt:
                self.backoff(attempt)
            pending = self._put_once(pending)
        return pending

    def _put_once(self, events: list[DomainEvent]) -> list[DomainEvent]:
        failed: list[DomainEvent] = []
        entries = [entry_of(e, self.bus) for e in events]
        start = 0
        for group in chunks(entries):
            sent = events[start : start + len(group)]
            start += len(group)
            try:
                answer = self.client.put_events(Entries=group)
            except (ClientError, BotoCoreError) as exc:
                # throttled or unreachable after the SDK's own retries: the whole group again
                logger.warning("PutEvents failed", extra={"entries": len(group), "error": str(exc)[:200]})
                failed += sent
                continue
            if int(answer.get("FailedEntryCount", 0)):
                # Entries answers in request order; a failed one has an ErrorCode instead of an EventId
                results = answer.get("Entries") or []
                failed += [e for e, r in zip(sent, results, strict=False) if r.get("ErrorCode")]
                failed += sent[len(results) :]
        return failed


# ---- the stream consumer ---------------------------------------------------------------------------


class NotPublished(Exception):
    """Marks a stream record whose events did not reach the bus; the mapping retries it."""


@cache
def publisher() -> Publisher:
    bus = settings().event_bus_name
    if not bus:
        raise RuntimeError("Parley is misconfigured: set EVENT_BUS_NAME")
    # full jitter, 0.1 then 0.2 s at most: well inside the function's Timeout
    return Publisher(aws.events(), bus, backoff=lambda attempt: time.sleep(random.uniform(0, 0.1 * attempt)))  # noqa: S311


def records_of(event: dict[str, Any]) -> list[Record]:
    batch = DynamoDBStreamModel.model_validate(event)
    return [
        Record(
            event_id=r.eventID,
            event_name=str(r.eventName),
            new_image=r.dynamodb.NewImage if isinstance(r.dynamodb.NewImage, dict) else None,
            old_image=r.dynamodb.OldImage if isinstance(r.dynamodb.OldImage, dict) else None,
            sequence=r.dynamodb.SequenceNumber,
            time=r.dynamodb.ApproximateCreationDateTime,
        )
        for r in batch.Records
    ]


def handle_domain_events(
    event: dict[str, Any], context: LambdaContext, *, publish: Publisher | None = None
) -> PartialItemFailureResponse:
    """Put the batch's events, then answer per record: the records whose events failed are retried."""
    events = [e for record in records_of(event) for e in events_of(record)]
    failed = (publish or publisher()).publish(events) if events else []
    failed_sequences = {e.sequence for e in failed}
    metrics.add_metric(name="DomainEvents", unit=MetricUnit.Count, value=len(events) - len(failed))
    if failed:
        metrics.add_metric(name="DomainEventsFailed", unit=MetricUnit.Count, value=len(failed))
        logger.warning("domain events not published", extra={"failed_events": len(failed)})

    def check(record: DynamoDBRecord) -> None:
        if record.dynamodb is not None and record.dynamodb.sequence_number in failed_sequences:
            raise NotPublished(record.dynamodb.sequence_number)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=check, processor=processor, context=context)
