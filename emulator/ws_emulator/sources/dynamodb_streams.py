"""DynamoDB stream event source mappings: one poller per shard, records as Lambda delivers them."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ws_emulator.aws.services import LocalAws
from ws_emulator.aws.ttl import TTL_USER_IDENTITY, TtlMarks
from ws_emulator.aws.writes import TableWrites, WriteSignal
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.batching import (
    Batch,
    BatchConfig,
    Outcome,
    ShardBatcher,
    StreamRecord,
    failure_record,
)
from ws_emulator.sources.poller import Poller
from ws_emulator.sources.reorder import RecordOrder
from ws_emulator.template.specs import FunctionSpec, StreamSourceSpec, Template

_RECORD_KEYS = (
    "ApproximateCreationDateTime",
    "Keys",
    "NewImage",
    "OldImage",
    "SequenceNumber",
    "SizeBytes",
    "StreamViewType",
)


def _json_safe(value: Any) -> Any:
    # boto3 hands Binary attributes over as bytes; Lambda events carry them base64-encoded.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_json_safe(v) for v in value]
    return value


def lambda_record(raw: dict[str, Any], *, stream_arn: str, region: str, ttl_deleted: bool) -> StreamRecord:
    """A GetRecords record as Lambda delivers it: with eventSourceARN (moto omits it), TTL userIdentity."""
    ddb = raw["dynamodb"]
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        arrival = created.timestamp()
    elif isinstance(created, int | float):
        arrival = float(created)
    else:
        arrival = time.time()
    body: dict[str, Any] = {}
    for key in _RECORD_KEYS:
        if key == "ApproximateCreationDateTime":
            body[key] = int(arrival)  # Lambda delivers whole epoch seconds
        elif key in ddb:
            body[key] = _json_safe(ddb[key])
    event: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion") or region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    if ttl_deleted or raw.get("userIdentity"):
        event["userIdentity"] = dict(raw.get("userIdentity") or TTL_USER_IDENTITY)
    return StreamRecord(sequence_number=str(ddb["SequenceNumber"]), arrival=arrival, event=event)


RunBlocking = Callable[..., Any]
# Woken by writes, an idle shard is still read this often: a write the signal cannot see (another
# process writing to an external endpoint) waits at most this long.
WAKE_FALLBACK_S = 1.0
# Woken by writes, a shard is read at most this often: a burst of writes (a connect storm writes the
# state table hundreds of times a second) costs at most 50 GetRecords a second, each record at most
# 20 ms later, instead of one GetRecords per write competing for the embedded DynamoDB.
MIN_READ_GAP_S = 0.02


class ShardPoller(Poller[StreamRecord]):
    """Reads one shard in order and delivers its records with one batch in flight."""

    def __init__(
        self, mapping: StreamMapping, shard_id: str, *, position: str, parent: ShardPoller | None = None
    ) -> None:
        self.mapping = mapping
        self.shard_id = shard_id
        self.position = position
        self.parent = parent
        self.finished = False
        self.batcher = ShardBatcher(mapping.config)
        self.last_empty_poll: float = 0.0
        self.last_sequence: str | None = None
        self.records_read = 0
        self.records_filtered_out = 0
        self._first_iterator: str | None = None
        self._shard_iterator: str | None = None
        writes = mapping.writes
        self._wake: WriteSignal | None = writes.watch(mapping.table_name) if writes is not None else None

    @property
    def filters(self) -> list[dict[str, Any]]:
        return self.mapping.source.filters

    def filter_view(self, record: StreamRecord) -> dict[str, Any]:
        return record.event

    async def poll_events(self) -> list[dict[str, Any]]:
        """One GetRecords on the current iterator; moves the iterator on (None once the shard closed)."""
        m = self.mapping
        response = await m.run_blocking(m.streams.get_records, ShardIterator=self._shard_iterator, Limit=1000)
        self._shard_iterator = response.get("NextShardIterator")
        records: list[dict[str, Any]] = response.get("Records", [])
        return records

    def add_source_metadata(self, raw: dict[str, Any]) -> StreamRecord:
        """eventSourceARN (moto omits it) and, for a sweeper's REMOVE, the TTL service identity."""
        m = self.mapping
        keys = raw["dynamodb"].get("Keys", {})
        ttl = raw["eventName"] == "REMOVE" and m.ttl_marks.take(m.ttl_consumer, m.table_name, keys)
        return lambda_record(raw, stream_arn=m.stream_arn, region=m.region, ttl_deleted=ttl)

    async def _iterator(self, initial: str) -> str:
        m = self.mapping
        kwargs: dict[str, Any] = {"StreamArn": m.stream_arn, "ShardId": self.shard_id}
        if self.last_sequence is not None:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.last_sequence}
        else:
            kwargs["ShardIteratorType"] = initial
        response = await m.run_blocking(m.streams.get_shard_iterator, **kwargs)
        return str(response["ShardIterator"])

    async def open(self) -> None:
        """Take the starting iterator now, so records written after start() are not missed."""
        self._first_iterator = await self._iterator(self.position)

    async def run(self) -> None:
        m = self.mapping
        # A child shard's records follow its parent's: wait until the parent is read to its end.
        while self.parent is not None and not self.parent.finished:
            await asyncio.sleep(m.poll_interval_s)
        self._shard_iterator = self._first_iterator or await self._iterator(self.position)
        while self._shard_iterator is not None:
            started = time.time()
            if self._wake is not None:
                self._wake.clear()  # a write from here on wakes the wait below
            try:
                raws = await self.poll_events()
            except (ClientError, BotoCoreError) as exc:
                # Expired or trimmed iterators happen on real endpoints: resume after the last record.
                m.log.warning("%s: GetRecords failed (%s); re-opening the shard", m.name, exc)
                await asyncio.sleep(m.poll_interval_s * 5)
                try:
                    self._shard_iterator = await self._iterator(self.position)
                except (ClientError, BotoCoreError) as again:
                    m.log.warning("%s: cannot re-open the shard yet (%s)", m.name, again)
                continue
            if raws:
                self._accept(raws)
            else:
                self.last_empty_poll = started
            await self._deliver_ready()
            if not raws:
                await self._wait_for_records(started)
            elif self._wake is not None:
                await self._pace(started)
        # A closed shard: finish what was read, then stop (children are picked up by the mapping).
        while not self.batcher.idle:
            await self._deliver_ready(flush=True)
            await asyncio.sleep(m.poll_interval_s)
        self.finished = True

    async def _wait_for_records(self, last_read: float) -> None:
        """After an empty read: sleep the poll interval, or (woken by writes) until the table is written."""
        m = self.mapping
        if self._wake is None:
            await asyncio.sleep(m.poll_interval_s)
        else:
            # Records waiting for their batching window need a look in time to close it.
            await self._wake.wait(WAKE_FALLBACK_S if self.batcher.idle else m.poll_interval_s)
            await self._pace(last_read)

    @staticmethod
    async def _pace(last_read: float) -> None:
        gap = last_read + MIN_READ_GAP_S - time.time()
        if gap > 0:
            await asyncio.sleep(gap)

    def close(self) -> None:
        """Stop listening for writes (the poller's task has ended or been cancelled)."""
        if self._wake is not None and self.mapping.writes is not None:
            self.mapping.writes.unwatch(self.mapping.table_name, self._wake)
            self._wake = None

    def _accept(self, raws: list[dict[str, Any]]) -> None:
        records = [self.add_source_metadata(raw) for raw in raws]
        self.last_sequence = records[-1].sequence_number
        self.records_read += len(records)
        # Records matching no filter are dropped here, i.e. checkpointed past without an invoke.
        kept, dropped = self.filter_events(records)
        self.records_filtered_out += len(dropped)
        if self.mapping.reorder is not None:
            kept = self.mapping.reorder(kept)  # --stream-reorder (sources/reorder.py)
        self.batcher.add(kept, time.time())

    async def _deliver_ready(self, *, flush: bool = False) -> None:
        m = self.mapping
        while True:
            batch, aged = self.batcher.next_batch(time.time(), flush=flush or m.flushing)
            for discarded in aged:
                await m.send_failure(self.shard_id, discarded)
            if batch is None:
                return
            if batch.is_retry:
                await asyncio.sleep(m.retry_backoff_s)
            outcome = await m.invoke(batch)
            for discarded in self.batcher.complete(batch, outcome):
                await m.send_failure(self.shard_id, discarded)

    def quiet_since(self, moment: float) -> bool:
        return self.finished or (self.batcher.idle and self.last_empty_poll >= moment)


class StreamMapping:
    """One DynamoDB stream event source mapping (a function's `Type: DynamoDB` event)."""

    def __init__(
        self,
        function: FunctionSpec,
        source: StreamSourceSpec,
        *,
        template: Template,
        aws: LocalAws,
        runtime: FunctionRuntime,
        ttl_marks: TtlMarks,
        run_blocking: RunBlocking,
        poll_interval_s: float,
        retry_backoff_s: float,
        log: logging.Logger,
        writes: TableWrites | None = None,
    ) -> None:
        self.function = function
        self.source = source
        self.template = template
        self.aws = aws
        self.runtime = runtime
        self.ttl_marks = ttl_marks
        self.ttl_consumer = ttl_marks.register()
        self.run_blocking = run_blocking
        self.poll_interval_s = poll_interval_s
        self.retry_backoff_s = retry_backoff_s
        self.log = log
        # None: poll an idle shard every poll_interval_s; else wait until the table is written.
        self.writes = writes
        self.region = template.region
        self.table_name = template.tables[source.table_id].name
        self.config = BatchConfig(
            batch_size=source.batch_size,
            batching_window_s=source.batching_window_s,
            report_batch_item_failures=source.report_batch_item_failures,
            bisect_on_error=source.bisect_on_error,
            max_retry_attempts=source.max_retry_attempts,
            max_record_age_s=source.max_record_age_s,
        )
        self.name = f"{function.logical_id}.{source.event_id or source.table_id}"
        self.stream_arn = ""
        self.streams: Any = None
        self.sqs: Any = None
        self.shards: dict[str, ShardPoller] = {}
        self.flushing = False
        self.failures_sent = 0
        # Applied to each read's records before batching (--stream-reorder); None keeps shard order.
        self.reorder: RecordOrder | None = None

    async def prepare(self) -> None:
        """Resolve the real stream ARN and open iterators before anything can be written."""
        self.streams = self.aws.client("dynamodbstreams")
        self.sqs = self.aws.client("sqs")
        self.stream_arn = await self.run_blocking(self.aws.stream_arn, self.template, self.source.table_id)
        description = (await self.run_blocking(self.streams.describe_stream, StreamArn=self.stream_arn))[
            "StreamDescription"
        ]
        for shard in description.get("Shards", []):
            if "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {}):
                poller = ShardPoller(self, shard["ShardId"], position=self.source.starting_position)
                self.shards[shard["ShardId"]] = poller

    async def new_shards(self) -> list[ShardPoller]:
        """Shards that appeared since the last look (a shard rollover), read from their start."""
        description = (await self.run_blocking(self.streams.describe_stream, StreamArn=self.stream_arn))[
            "StreamDescription"
        ]
        found = []
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self.shards:
                continue
            parent = self.shards.get(shard.get("ParentShardId", ""))
            poller = ShardPoller(self, shard_id, position="TRIM_HORIZON", parent=parent)
            self.shards[shard_id] = poller
            found.append(poller)
        return found

    async def invoke(self, batch: Batch) -> Outcome:
        result = await self.runtime.invoke(self.function.logical_id, batch.event)
        if not result.ok:
            error = result.error or {}
            self.log.warning(
                "%s: batch of %d failed (attempt %d): %s: %s",
                self.name,
                len(batch.records),
                batch.attempt + 1,
                error.get("errorType"),
                error.get("errorMessage"),
            )
        return Outcome(
            ok=result.ok,
            payload=result.payload,
            request_id=result.request_id,
            function_error=None if result.ok else "Unhandled",
        )

    async def send_failure(self, shard_id: str, discarded: Any) -> None:
        message = failure_record(
            discarded,
            shard_id=shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function.arn,
            now=time.time(),
        )
        self.log.warning(
            "%s: discarding %d record(s) (%s)", self.name, len(discarded.records), discarded.condition
        )
        queue_id = self.source.on_failure_queue_id
        if queue_id is None:
            return
        try:
            url = await self.run_blocking(self.aws.queue_url, self.template, queue_id)
            await self.run_blocking(self.sqs.send_message, QueueUrl=url, MessageBody=json.dumps(message))
        except Exception:  # as on AWS, a destination failure loses the record but not the mapping
            self.log.exception("%s: could not send the failure record to %s", self.name, queue_id)
            return
        self.failures_sent += 1
