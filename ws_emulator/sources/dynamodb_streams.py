"""DynamoDB stream event source mappings, and EventSources: every trigger of the template, wired."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ws_emulator.aws.services import LocalAws
from ws_emulator.aws.ttl import TTL_USER_IDENTITY, TtlMarks, TtlSweeper
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.batching import (
    Batch,
    BatchConfig,
    Outcome,
    ShardBatcher,
    StreamRecord,
    failure_record,
)
from ws_emulator.sources.filters import matches_any
from ws_emulator.sources.schedules import ScheduledTarget, Scheduler
from ws_emulator.sources.sqs import SqsMapping
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


class ShardPoller:
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
        iterator: str | None = self._first_iterator or await self._iterator(self.position)
        while iterator is not None:
            started = time.time()
            try:
                response = await m.run_blocking(m.streams.get_records, ShardIterator=iterator, Limit=1000)
            except (ClientError, BotoCoreError) as exc:
                # Expired or trimmed iterators happen on real endpoints: resume after the last record.
                m.log.warning("%s: GetRecords failed (%s); re-opening the shard", m.name, exc)
                await asyncio.sleep(m.poll_interval_s * 5)
                try:
                    iterator = await self._iterator(self.position)
                except (ClientError, BotoCoreError) as again:
                    m.log.warning("%s: cannot re-open the shard yet (%s)", m.name, again)
                continue
            iterator = response.get("NextShardIterator")
            raws = response.get("Records", [])
            if raws:
                self._accept(raws)
            else:
                self.last_empty_poll = started
            await self._deliver_ready()
            if not raws:
                await asyncio.sleep(m.poll_interval_s)
        # A closed shard: finish what was read, then stop (children are picked up by the mapping).
        while not self.batcher.idle:
            await self._deliver_ready(flush=True)
            await asyncio.sleep(m.poll_interval_s)
        self.finished = True

    def _accept(self, raws: list[dict[str, Any]]) -> None:
        m = self.mapping
        accepted = []
        for raw in raws:
            keys = raw["dynamodb"].get("Keys", {})
            ttl = raw["eventName"] == "REMOVE" and m.ttl_marks.take(m.ttl_consumer, m.table_name, keys)
            record = lambda_record(raw, stream_arn=m.stream_arn, region=m.region, ttl_deleted=ttl)
            self.last_sequence = record.sequence_number
            self.records_read += 1
            # Records matching no filter are dropped here, i.e. checkpointed past without an invoke.
            if matches_any(m.source.filters, record.event):
                accepted.append(record)
            else:
                self.records_filtered_out += 1
        self.batcher.add(accepted, time.time())

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


async def cancel_and_wait(tasks: list[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
    """Cancel tasks and wait until they are done, cancelling again if one swallowed it.

    Python 3.11's asyncio.wait_for can lose a cancellation when the awaited result arrives at the
    same moment (fixed in 3.12); a polling loop would then run on and stop() would wait forever.
    """
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.2)
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()  # retrieved, so asyncio does not warn about it


class EventSources:
    """Every trigger of the template: stream mappings, SQS mappings, schedules and the TTL sweeper."""

    def __init__(
        self,
        template: Template,
        aws: LocalAws,
        runtime: FunctionRuntime,
        *,
        poll_interval_s: float = 0.1,
        ttl_sweep_interval_s: float = 1.0,
        log: logging.Logger | None = None,
        retry_backoff_s: float = 0.1,
        sqs_wait_time_s: int = 1,
        schedule_speedup: float = 1.0,
        schedule_overrides: Mapping[str, float] | None = None,
        enable_schedules: bool = True,
        enable_ttl: bool = True,
        shard_refresh_s: float = 10.0,
    ) -> None:
        self.template = template
        self.aws = aws
        self.runtime = runtime
        self.poll_interval_s = poll_interval_s
        self.ttl_sweep_interval_s = ttl_sweep_interval_s
        self.log = log or logging.getLogger("ws_emulator.sources")
        self.retry_backoff_s = retry_backoff_s
        self.sqs_wait_time_s = sqs_wait_time_s
        self.schedule_speedup = schedule_speedup
        self.schedule_overrides = dict(schedule_overrides or {})
        self.enable_schedules = enable_schedules
        self.enable_ttl = enable_ttl
        self.shard_refresh_s = shard_refresh_s
        self.ttl_marks = TtlMarks()
        self.stream_mappings: list[StreamMapping] = []
        self.sqs_mappings: list[SqsMapping] = []
        self.scheduler: Scheduler | None = None
        self.ttl_sweeper: TtlSweeper | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Blocking boto3 calls (and SQS long polls) get their own threads, not the loop's default pool.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ws-emulator-sources")
        self._started = False

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        """Open stream iterators (LATEST unless the mapping says TRIM_HORIZON) and start every poller."""
        if self._started:
            return
        self._started = True
        for function in self.template.functions.values():
            for source in function.stream_sources:
                self.stream_mappings.append(
                    StreamMapping(
                        function,
                        source,
                        template=self.template,
                        aws=self.aws,
                        runtime=self.runtime,
                        ttl_marks=self.ttl_marks,
                        run_blocking=self.run_blocking,
                        poll_interval_s=self.poll_interval_s,
                        retry_backoff_s=self.retry_backoff_s,
                        log=self.log,
                    )
                )
            for sqs_source in function.sqs_sources:
                queue = self.template.queues[sqs_source.queue_id]
                self.sqs_mappings.append(
                    SqsMapping(
                        function,
                        sqs_source,
                        queue_url=await self.run_blocking(
                            self.aws.queue_url, self.template, queue.logical_id
                        ),
                        queue_arn=queue.arn,
                        region=self.template.region,
                        client=self.aws.client("sqs"),
                        runtime=self.runtime,
                        run_blocking=self.run_blocking,
                        wait_time_s=self.sqs_wait_time_s,
                        log=self.log,
                    )
                )
        await asyncio.gather(*(m.prepare() for m in self.stream_mappings))
        pollers = [p for m in self.stream_mappings for p in m.shards.values()]
        # Iterators must exist before start() returns, or writes right after it would be missed.
        await asyncio.gather(*(self._open(p) for p in pollers))
        for stream_mapping in self.stream_mappings:
            self._spawn(self._watch_shards(stream_mapping), f"{stream_mapping.name} shards")
        for mapping in self.sqs_mappings:
            self._spawn(mapping.run(), mapping.name)
        self._start_schedules()
        if self.enable_ttl and any(t.ttl_attribute for t in self.template.tables.values()):
            self.ttl_sweeper = TtlSweeper(
                self.template,
                lambda: self.aws.client("dynamodb"),
                self.ttl_marks,
                interval_s=self.ttl_sweep_interval_s,
                log=self.log,
            )
            self._spawn(self.ttl_sweeper.run(self.run_blocking), "ttl-sweeper")
        self.log.info(
            "event sources: %d stream mapping(s), %d SQS mapping(s), %d schedule(s), TTL sweeper %s",
            len(self.stream_mappings),
            len(self.sqs_mappings),
            len(self.scheduler.targets) if self.scheduler else 0,
            "on" if self.ttl_sweeper else "off",
        )

    async def _open(self, poller: ShardPoller) -> None:
        await poller.open()
        self._spawn(poller.run(), f"{poller.mapping.name}/{poller.shard_id}")

    async def _watch_shards(self, mapping: StreamMapping) -> None:
        # moto keeps one shard forever; DynamoDB (and LocalStack) roll shards over every few hours.
        while True:
            await asyncio.sleep(self.shard_refresh_s)
            try:
                for poller in await mapping.new_shards():
                    self.log.info("%s: new shard %s", mapping.name, poller.shard_id)
                    await self._open(poller)
            except (ClientError, BotoCoreError) as exc:
                self.log.warning("%s: DescribeStream failed: %s", mapping.name, exc)

    def _start_schedules(self) -> None:
        if not self.enable_schedules:
            return
        targets = []
        for function in self.template.functions.values():
            for schedule in function.schedules:
                if not schedule.enabled:
                    continue
                rule = f"{self.template.stack_name}-{function.logical_id}{schedule.event_id}"
                targets.append(
                    ScheduledTarget(
                        function_id=function.logical_id,
                        event_id=schedule.event_id,
                        expression=schedule.expression,
                        input=schedule.input,
                        rule_arn=f"arn:aws:events:{self.template.region}:{self.template.account_id}:rule/{rule}",
                        period_override_s=self.schedule_overrides.get(function.logical_id),
                    )
                )
        if not targets:
            return
        self.scheduler = Scheduler(
            targets,
            self.runtime.invoke,
            account=self.template.account_id,
            region=self.template.region,
            speedup=self.schedule_speedup,
            log=self.log,
        )
        for target in targets:
            self._spawn(self.scheduler.run_target(target), f"schedule {target.function_id}.{target.event_id}")

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guard(coro, name), name=name)
        self._tasks.append(task)

    async def _guard(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a dead poller must be visible in the log, not silently gone
            self.log.exception("event source %s stopped", name)

    async def drain(self, timeout_s: float) -> None:
        """Deliver what is already in streams and queues (batching windows ignored); bounded by timeout."""
        deadline = time.monotonic() + timeout_s
        since = time.time()
        confirming = False
        for mapping in self.stream_mappings:
            mapping.flushing = True
        try:
            while time.monotonic() < deadline:
                if not await self._quiet(since):
                    confirming = False
                elif confirming:
                    return
                else:
                    # Quiet once; one more full round (fresh polls of every shard) catches records
                    # written meanwhile by functions triggered from another source.
                    confirming = True
                    since = time.time()
                await asyncio.sleep(min(0.05, self.poll_interval_s))
            self.log.warning("drain: gave up after %.1f s with work still pending", timeout_s)
        finally:
            for mapping in self.stream_mappings:
                mapping.flushing = False

    async def _quiet(self, since: float) -> bool:
        for mapping in self.stream_mappings:
            if not all(p.quiet_since(since) for p in mapping.shards.values()):
                return False
        for sqs_mapping in self.sqs_mappings:
            if not await sqs_mapping.quiet():
                return False
        return True

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        # Batches already handed to a function (SQS runs several at once) end before the threads go.
        await cancel_and_wait([t for m in self.sqs_mappings for t in m.in_flight])
        self._tasks.clear()
        # Threads blocked in a long poll finish on their own within WaitTimeSeconds.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def dead_letters(self) -> dict[str, list[dict[str, Any]]]:
        """Queue logical id -> messages now in every on-failure destination and DLQ (a peek)."""
        queue_ids = {
            s.on_failure_queue_id
            for f in self.template.functions.values()
            for s in f.stream_sources
            if s.on_failure_queue_id
        } | {q.dead_letter_queue_id for q in self.template.queues.values() if q.dead_letter_queue_id}
        sqs = self.aws.client("sqs")
        return {qid: _peek(sqs, self.aws.queue_url(self.template, qid)) for qid in sorted(queue_ids)}


def _peek(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Read every visible message, then make them visible again at once."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            handles.append(message["ReceiptHandle"])
            seen.setdefault(
                message["MessageId"],
                {
                    "messageId": message["MessageId"],
                    "body": message.get("Body", ""),
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": message.get("MessageAttributes", {}),
                },
            )
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
        )
    return list(seen.values())
