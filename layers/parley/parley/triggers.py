"""Entry points of the non-route triggers: the stream fan-out, the messages stream's counters and domain
events, the presence timer queue and the sweeper."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps
from parley.fanout import StreamChange, plan
from parley.observability import MetricUnit, logger, metrics
from parley.wide_fanout import Chunk


class NotDelivered(Exception):
    """Marks a stream record whose events did not reach every recipient; the mapping retries it."""


def handle_stream(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch = DynamoDBStreamModel.model_validate(event)
    changes = [
        StreamChange(
            sequence=r.dynamodb.SequenceNumber,
            event_id=r.eventID,
            event_name=str(r.eventName),
            new_image=r.dynamodb.NewImage if isinstance(r.dynamodb.NewImage, dict) else None,
            old_image=r.dynamodb.OldImage if isinstance(r.dynamodb.OldImage, dict) else None,
            created_ms=(
                int(r.dynamodb.ApproximateCreationDateTime.timestamp() * 1000)
                if r.dynamodb.ApproximateCreationDateTime
                else None
            ),
        )
        for r in batch.Records
    ]
    work = plan(changes)
    fanout = deps.services().fanout
    report = fanout.deliver(work, deps.services().chat.clock.now_ms() // 1000)
    for connection_id in report.gone:
        try:
            deps.services().chat.forget_gone(connection_id, report.gone_subscriptions.get(connection_id, []))
        except Exception:  # TTL and the sweeper are the backstop; a gone connection is no delivery failure
            logger.exception("stale connection clean-up failed", extra={"stale_connection": connection_id})

    now_ms = time.time() * 1000
    oldest = min((c.created_ms for c in changes if c.created_ms), default=None)
    metrics.add_metric(name="FanoutBatchSize", unit=MetricUnit.Count, value=len(changes))
    metrics.add_metric(name="Deliveries", unit=MetricUnit.Count, value=report.deliveries)
    metrics.add_metric(name="Posts", unit=MetricUnit.Count, value=report.posts)
    metrics.add_metric(name="GoneConnections", unit=MetricUnit.Count, value=len(report.gone))
    metrics.add_metric(name="Throttles", unit=MetricUnit.Count, value=report.throttled)
    if report.handed_off:
        metrics.add_metric(name="WideHandedOff", unit=MetricUnit.Count, value=report.handed_off)
    if oldest is not None:
        metrics.add_metric(
            name="FanoutLatency", unit=MetricUnit.Milliseconds, value=max(0.0, now_ms - oldest)
        )
    if report.failed_sequences:
        logger.warning("fan-out incomplete", extra={"failed_records": len(report.failed_sequences)})

    def check(record: DynamoDBRecord) -> None:
        if record.dynamodb is not None and record.dynamodb.sequence_number in report.failed_sequences:
            raise NotDelivered(record.dynamodb.sequence_number)

    # Every record failing is still a per-record answer, not a function error: the mapping retries from
    # the first failure, and bisecting would not help (failures are per connection, not poison records).
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=check, processor=processor, context=context)


def handle_counters(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The MessagesTable stream's new messages, added to the unread and mention counters."""
    from parley import counters

    batch = DynamoDBStreamModel.model_validate(event)
    changes = [
        StreamChange(
            sequence=r.dynamodb.SequenceNumber,
            event_id=r.eventID,
            event_name=str(r.eventName),
            new_image=r.dynamodb.NewImage if isinstance(r.dynamodb.NewImage, dict) else None,
            old_image=None,
        )
        for r in batch.Records
    ]
    work = counters.plan(changes)
    failed = counters.apply(work, deps.services().conversations.store)
    metrics.add_metric(name="CountedMessages", unit=MetricUnit.Count, value=len(changes) - len(work.ignored))

    def check(record: DynamoDBRecord) -> None:
        if record.dynamodb is not None and record.dynamodb.sequence_number in failed:
            raise NotDelivered(record.dynamodb.sequence_number)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=check, processor=processor, context=context)


def handle_message_stream(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The MessagesTable stream's second reader (FanoutFunction's is the first): the unread counters,
    then the domain events, on one mapping. AWS advises at most two Lambda readers per shard of a
    table's stream (more are throttled), so the two jobs share one; both are safe to repeat (a counter
    adds only ids above the highest it counted; an event carries its record's id), so a record either
    job failed is retried for both."""
    from parley.domain_events import handle_domain_events

    counted = handle_counters(event, context)
    published = handle_domain_events(event, context)
    failed = {
        str(f["itemIdentifier"]) for f in (*counted["batchItemFailures"], *published["batchItemFailures"])
    }
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in sorted(failed)]}


def handle_presence_timers(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    chat = deps.services().chat

    def finish(record: SQSRecord) -> None:
        body = json.loads(record.body)
        if chat.finish_leave(str(body["workspace"]), str(body["channel"]), str(body["userId"])):
            metrics.add_metric(name="PresenceLeaves", unit=MetricUnit.Count, value=1)

    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=finish, processor=processor, context=context)


class ChunkNotDelivered(Exception):
    """Marks a fan-out chunk that did not reach every recipient; SQS hands it back (the group waits)."""


def handle_chunks(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """The second level of the two-level fan-out: post each chunk of a FIFO batch, in order.

    A chunk that fails fails the later messages of its group in the batch too (they must not overtake
    it); the other groups' messages go on (`skip_group_on_error`)."""
    worker = deps.services().chunks
    totals = {"Posts": 0, "Deliveries": 0, "GoneConnections": 0, "Throttles": 0}

    def post(record: SQSRecord) -> None:
        chunk = Chunk.model_validate_json(record.body)
        report = worker.deliver(chunk)
        totals["Posts"] += report.posts
        totals["Deliveries"] += report.deliveries
        totals["GoneConnections"] += len(report.gone)
        totals["Throttles"] += report.throttled
        if not report.complete:
            raise ChunkNotDelivered(f"{report.failed} of {len(chunk.to)} connections not reached")

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A chunk not delivered is a per-message answer, not a function error (the Errors alarm stays for
    # real failures), even when it is the batch's only message. The FIFO processor's constructor does
    # not take the flag BatchProcessor takes; the attribute is the same one.
    processor.raise_on_entire_batch_failure = False
    try:
        return process_partial_response(
            event=event, record_handler=post, processor=processor, context=context
        )
    finally:
        metrics.add_metric(name="ChunkBatchSize", unit=MetricUnit.Count, value=len(event.get("Records", [])))
        for name, value in totals.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# Stop taking new work this long before the Lambda's deadline: one item's calls fit well within it,
# and an item cut off by the timeout is simply done again by the next run.
SWEEP_MARGIN_MS = 5_000


def handle_sweep(context: LambdaContext) -> dict[str, int]:
    report = deps.services().chat.sweep(lambda: context.get_remaining_time_in_millis() > SWEEP_MARGIN_MS)
    metrics.add_metric(name="StaleConnections", unit=MetricUnit.Count, value=report.stale)
    metrics.add_metric(name="OverdueLeaves", unit=MetricUnit.Count, value=report.leaves)
    metrics.add_metric(name="SweepUnfinished", unit=MetricUnit.Count, value=0 if report.finished else 1)
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=report.errors)
    logger.info(
        "sweep done",
        extra={
            "stale_connections": report.stale,
            "overdue_leaves": report.leaves,
            "finished": report.finished,
            "shard_errors": report.errors,
        },
    )
    return {"staleConnections": report.stale, "overdueLeaves": report.leaves}
