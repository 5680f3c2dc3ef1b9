"""SQS event source mappings: poll a queue, invoke with Lambda's SQS event, delete what succeeded."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.batching import parse_item_failures
from ws_emulator.sources.poller import Poller, RunBlocking
from ws_emulator.template.specs import FunctionSpec, SqsSourceSpec

DEFAULT_CONCURRENT_BATCHES = 5  # Lambda's initial SQS polling concurrency
_MIN_EMPTY_POLL_S = 0.1


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        out["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
    return out


def sqs_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage message as the record Lambda hands the function."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            k: _message_attribute(v) for k, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """What SQS filter patterns see: the record, with a JSON body parsed (a plain body stays a string)."""
    body = record.get("body", "")
    try:
        parsed = json.loads(body)
    except ValueError:
        return record
    return record | {"body": parsed} if isinstance(parsed, dict) else record


def succeeded_message_ids(
    records: list[dict[str, Any]], ok: bool, payload: Any, report_failures: bool
) -> list[str]:
    """Messages to delete after an invoke; the others come back after the visibility timeout."""
    ids = [r["messageId"] for r in records]
    if not ok:
        return []
    if not report_failures:
        return ids
    failed = parse_item_failures(payload)
    if failed is None:
        return ids
    if not failed or any(f not in ids for f in failed):
        return []  # a malformed response fails the whole batch, as on AWS
    return [i for i in ids if i not in failed]


class SqsMapping(Poller[dict[str, Any]]):
    """One SQS event source mapping: one receiving loop, up to `concurrency` batches in flight.

    Lambda starts with five concurrent batches per queue (ScalingConfig.MaximumConcurrency caps it);
    a FIFO queue gets one, which keeps each message group in order. Visibility timeout, per-message
    and per-queue DelaySeconds and RedrivePolicy (maxReceiveCount -> DLQ) are left to the SQS
    implementation: moto 5.2 honours all three (checked), as AWS does.
    """

    def __init__(
        self,
        function: FunctionSpec,
        source: SqsSourceSpec,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        client: Any,
        runtime: FunctionRuntime,
        run_blocking: RunBlocking,
        wait_time_s: int = 1,
        log: logging.Logger | None = None,
    ) -> None:
        self.function = function
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self._region = region
        self._client = client
        self._runtime = runtime
        self._run = run_blocking
        self._wait_time_s = wait_time_s
        self._log = log or logging.getLogger("ws_emulator.sqs")
        self.busy = 0  # batches received and not yet settled
        self.in_flight: set[asyncio.Task[None]] = set()  # batches being delivered
        self.invocations = 0
        self.name = f"{function.logical_id}.{source.event_id or source.queue_id}"
        fifo = queue_arn.endswith(".fifo")
        self.concurrency = 1 if fifo else max(1, source.max_concurrency or DEFAULT_CONCURRENT_BATCHES)

    @property
    def filters(self) -> list[dict[str, Any]]:
        return self.source.filters

    def add_source_metadata(self, raw: dict[str, Any]) -> dict[str, Any]:
        return sqs_record(raw, queue_arn=self.queue_arn, region=self._region)

    def filter_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return filter_view(record)

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        in_flight = self.in_flight
        try:
            while True:
                await slots.acquire()
                asked = time.monotonic()
                try:
                    messages = await self.poll_events()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep polling: a transient endpoint error must not kill the mapping
                    slots.release()
                    self._log.exception("SQS mapping %s failed; retrying", self.name)
                    await asyncio.sleep(1.0)
                    continue
                if not messages:
                    slots.release()
                    if time.monotonic() - asked < _MIN_EMPTY_POLL_S:
                        # No long poll happened (WaitTimeSeconds 0, or an endpoint ignoring it).
                        await asyncio.sleep(_MIN_EMPTY_POLL_S)
                    continue
                task = asyncio.create_task(self._settle(messages, slots))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for task in in_flight:
                task.cancel()

    async def _settle(self, messages: list[dict[str, Any]], slots: asyncio.Semaphore) -> None:
        try:
            await self._deliver(messages)
        except Exception:  # the messages come back after their visibility timeout
            self._log.exception("SQS mapping %s: delivery failed", self.name)
        finally:
            self.busy -= 1
            slots.release()

    async def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = await self._run(
            self._client.receive_message,
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    async def poll_events(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages, gathered for at most the batching window after the first."""
        messages = await self._receive(self.source.batch_size, self._wait_time_s)
        if not messages:
            return []
        self.busy += 1  # counted from here: these messages are invisible, not yet delivered
        deadline = time.monotonic() + self.source.batching_window_s
        try:
            while len(messages) < self.source.batch_size and time.monotonic() < deadline:
                more = await self._receive(self.source.batch_size - len(messages), 0)
                if not more:
                    await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                messages += more
        except BaseException:
            self.busy -= 1
            raise
        return messages

    async def poll_once(self) -> int:
        """Receive one batch and deliver it (one step of `run`, for tests)."""
        messages = await self.poll_events()
        if messages:
            try:
                await self._deliver(messages)
            finally:
                self.busy -= 1
        return len(messages)

    async def _deliver(self, messages: list[dict[str, Any]]) -> None:
        records = [self.add_source_metadata(m) for m in messages]
        if self.filters:
            # Lambda deletes SQS messages that match no filter, without invoking the function.
            records, dropped = self.filter_events(records)
            if dropped:
                await self._delete(dropped)
            if not records:
                return
        result = await self._runtime.invoke(self.function.logical_id, {"Records": records})
        self.invocations += 1
        done = succeeded_message_ids(
            records, result.ok, result.payload, self.source.report_batch_item_failures
        )
        if not result.ok:
            error = result.error or {}
            self._log.warning(
                "%s: batch of %d failed (%s: %s); messages return after the visibility timeout",
                self.name,
                len(records),
                error.get("errorType"),
                error.get("errorMessage"),
            )
        elif len(done) < len(records):
            self._log.info(
                "%s: %d of %d message(s) reported failed", self.name, len(records) - len(done), len(records)
            )
        await self._delete([r for r in records if r["messageId"] in done])

    async def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            await self._run(
                self._client.delete_message_batch,
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )

    async def quiet(self) -> bool:
        """Nothing visible or in flight in the queue, and no batch being delivered."""
        if self.busy:
            return False
        attrs = (
            await self._run(
                self._client.get_queue_attributes,
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
        )["Attributes"]
        visible = int(attrs.get("ApproximateNumberOfMessages", 0))
        in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
        return visible == 0 and in_flight == 0 and self.busy == 0
