"""Stream batching, checkpoint, retry and bisection state for one shard (pure, no I/O)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

RETRY_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    arrival: float  # epoch seconds (ApproximateCreationDateTime)
    event: dict[str, Any]  # the record as the function receives it

    @property
    def order(self) -> int:
        # Sequence numbers are decimal strings of varying length: compare them as numbers.
        return int(self.sequence_number)


@dataclass(frozen=True)
class BatchConfig:
    batch_size: int = 100
    batching_window_s: float = 0.0
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1


@dataclass(frozen=True)
class Batch:
    records: tuple[StreamRecord, ...]
    attempt: int  # failed invocations so far of exactly these records' segment (0 = first delivery)

    @property
    def event(self) -> dict[str, Any]:
        return {"Records": [r.event for r in self.records]}

    @property
    def is_retry(self) -> bool:
        return self.attempt > 0


@dataclass(frozen=True)
class Outcome:
    """What the invoke returned: ok=False is a function error (exception, timeout, crash)."""

    ok: bool
    payload: Any = None
    request_id: str = ""
    function_error: str | None = None


@dataclass(frozen=True)
class Discarded:
    """Records given up on: what Lambda describes to the on-failure destination."""

    records: tuple[StreamRecord, ...]
    condition: str
    invoke_count: int
    request_id: str = ""
    function_error: str | None = None


@dataclass
class _Segment:
    records: list[StreamRecord]
    attempts: int = 0  # failures that count toward MaximumRetryAttempts
    invocations: int = 0


@dataclass
class ShardBatcher:
    """The checkpoint/retry/bisect state machine of one shard, as Lambda runs a DynamoDB stream mapping.

    - Records are delivered in order, one batch in flight per shard.
    - A batch forms when BatchSize records wait, when the oldest waiting record has waited
      MaximumBatchingWindowInSeconds, or at once when the window is 0 (or on `flush`).
    - A function error fails the whole batch. With ReportBatchItemFailures a returned
      `batchItemFailures` list checkpoints at the lowest failed sequence number: that record and every
      later one of the batch are delivered again. An empty/null identifier, an identifier not in the
      batch or a malformed response fails the whole batch.
    - BisectBatchOnFunctionError splits a failed batch in two (first half first). A split does not
      consume a retry attempt; once a batch cannot be split, its failures count.
    - After MaximumRetryAttempts retries (-1 = forever), or once a record is older than
      MaximumRecordAgeInSeconds (-1 = never), the records are discarded and reported for the
      on-failure destination, and the shard moves on.
    """

    config: BatchConfig
    _pending: deque[StreamRecord] = field(default_factory=deque)
    _segments: deque[_Segment] = field(default_factory=deque)
    _in_flight: Batch | None = None
    _window_started: float | None = None
    delivered: int = 0  # batches completed successfully (for stats)

    @property
    def idle(self) -> bool:
        return not self._pending and not self._segments and self._in_flight is None

    @property
    def in_flight(self) -> Batch | None:
        return self._in_flight

    def add(self, records: Iterable[StreamRecord], now: float) -> None:
        """Queue records read from the shard (already filtered), in shard order."""
        for record in records:
            if not self._pending:
                self._window_started = now
            self._pending.append(record)

    def next_batch(self, now: float, *, flush: bool = False) -> tuple[Batch | None, list[Discarded]]:
        """The batch to invoke now (None: nothing ready, or one is in flight) and any aged-out records."""
        if self._in_flight is not None:
            return None, []
        discarded: list[Discarded] = []
        while True:
            if not self._segments and not self._form_segment(now, flush):
                return None, discarded
            segment = self._segments[0]
            fresh = self._drop_aged(segment, now, discarded)
            if fresh:
                self._in_flight = Batch(tuple(segment.records), segment.attempts)
                return self._in_flight, discarded
            self._segments.popleft()

    def complete(self, batch: Batch, outcome: Outcome) -> list[Discarded]:
        """Apply the invoke's outcome to the in-flight batch; returns records to report as failed."""
        if batch is not self._in_flight:
            raise ValueError("complete() called for a batch that is not in flight")
        self._in_flight = None
        segment = self._segments[0]
        segment.invocations += 1
        failed_from = self._failed_index(batch, outcome)
        if failed_from is None:
            self._segments.popleft()
            self.delivered += 1
            return []
        if failed_from > 0:
            # Checkpoint: the records before the lowest reported failure are done.
            segment.records = segment.records[failed_from:]
        whole_failure = failed_from == 0 and not self._is_partial(outcome)
        if whole_failure and self.config.bisect_on_error and len(segment.records) > 1:
            half = len(segment.records) // 2
            self._segments.popleft()
            first = _Segment(segment.records[:half], segment.attempts)
            second = _Segment(segment.records[half:], segment.attempts)
            self._segments.extendleft([second, first])
            return []
        segment.attempts += 1
        limit = self.config.max_retry_attempts
        if limit >= 0 and segment.attempts > limit:
            self._segments.popleft()
            return [
                Discarded(
                    records=tuple(segment.records),
                    condition=RETRY_EXHAUSTED,
                    invoke_count=segment.invocations,
                    request_id=outcome.request_id,
                    function_error=outcome.function_error if not outcome.ok else None,
                )
            ]
        return []

    # -- internals ------------------------------------------------------------------------------
    def _form_segment(self, now: float, flush: bool) -> bool:
        if not self._pending:
            return False
        ready = (
            flush
            or len(self._pending) >= self.config.batch_size
            or self.config.batching_window_s <= 0
            or (
                self._window_started is not None
                and now - self._window_started >= self.config.batching_window_s
            )
        )
        if not ready:
            return False
        take = min(self.config.batch_size, len(self._pending))
        self._segments.append(_Segment([self._pending.popleft() for _ in range(take)]))
        self._window_started = now if self._pending else None
        return True

    def _drop_aged(self, segment: _Segment, now: float, discarded: list[Discarded]) -> bool:
        max_age = self.config.max_record_age_s
        if max_age < 0:
            return True
        aged = [r for r in segment.records if now - r.arrival > max_age]
        if aged:
            segment.records = [r for r in segment.records if now - r.arrival <= max_age]
            discarded.append(Discarded(tuple(aged), RECORD_AGE_EXCEEDED, segment.invocations))
        return bool(segment.records)

    def _is_partial(self, outcome: Outcome) -> bool:
        return outcome.ok and self.config.report_batch_item_failures

    def _failed_index(self, batch: Batch, outcome: Outcome) -> int | None:
        """None = success; otherwise the index of the first record to deliver again."""
        if not outcome.ok:
            return 0
        if not self.config.report_batch_item_failures:
            return None
        failed = parse_item_failures(outcome.payload)
        if failed is None:
            return None
        index = {r.sequence_number: i for i, r in enumerate(batch.records)}
        if not failed or any(ident not in index for ident in failed):
            return 0  # malformed: the whole batch failed (and bisects like an error would not)
        return min(index[ident] for ident in failed)


def parse_item_failures(payload: Any) -> list[str] | None:
    """Identifiers a ReportBatchItemFailures response names: None = success, [] = malformed."""
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else payload
    if not failures:
        return None  # null or empty response, or an empty/null batchItemFailures list
    if not isinstance(failures, list) or isinstance(payload, list):
        return []
    idents = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if not all(isinstance(ident, str) and ident for ident in idents):
        return []
    return [str(ident) for ident in idents]


def _iso(epoch: float, *, millis: bool) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    discarded: Discarded,
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    now: float,
) -> dict[str, Any]:
    """The message Lambda sends to a stream mapping's on-failure destination (metadata only)."""
    records = discarded.records
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if discarded.function_error:
        response["functionError"] = discarded.function_error
    return {
        "requestContext": {
            "requestId": discarded.request_id,
            "functionArn": function_arn,
            "condition": discarded.condition,
            "approximateInvokeCount": discarded.invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(records[0].arrival, millis=False),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrival, millis=False),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
