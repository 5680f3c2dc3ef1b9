"""The per-shard checkpoint/retry/bisect state machine: given records and outcomes, what comes next."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws_emulator.sources.batching import (
    RECORD_AGE_EXCEEDED,
    RETRY_EXHAUSTED,
    Batch,
    BatchConfig,
    Outcome,
    ShardBatcher,
    failure_record,
    parse_item_failures,
)
from ws_emulator.sources.batching import StreamRecord as R

OK = Outcome(ok=True, request_id="req-ok")
ERROR = Outcome(ok=False, request_id="req-err", function_error="Unhandled")


def recs(*seqs: int, arrival: float = 1000.0) -> list[R]:
    return [R(str(s), arrival, {"dynamodb": {"SequenceNumber": str(s)}}) for s in seqs]


def seqs(batch: Batch | None) -> list[int]:
    assert batch is not None
    return [int(r.sequence_number) for r in batch.records]


def item_failures(*idents: Any) -> Outcome:
    return Outcome(ok=True, payload={"batchItemFailures": [{"itemIdentifier": i} for i in idents]})


def batcher(**config: Any) -> ShardBatcher:
    return ShardBatcher(BatchConfig(**config))


def deliver(b: ShardBatcher, outcome: Outcome, now: float = 1000.0) -> tuple[list[int], list[Any]]:
    batch, aged = b.next_batch(now)
    assert not aged
    return seqs(batch), b.complete(batch, outcome) if batch else []


# -- forming batches ----------------------------------------------------------------------------
def test_batches_respect_batch_size_and_order() -> None:
    b = batcher(batch_size=2)
    b.add(recs(1, 2, 3), now=0)
    assert deliver(b, OK) == ([1, 2], [])
    assert deliver(b, OK) == ([3], [])
    assert b.next_batch(0) == (None, [])
    assert b.idle


def test_one_batch_in_flight() -> None:
    b = batcher(batch_size=1)
    b.add(recs(1, 2), now=0)
    first, _ = b.next_batch(0)
    assert b.next_batch(0) == (None, [])
    assert first is not None
    b.complete(first, OK)
    assert seqs(b.next_batch(0)[0]) == [2]


def test_batching_window_waits_for_more_records() -> None:
    b = batcher(batch_size=3, batching_window_s=1.0)
    b.add(recs(1), now=10.0)
    assert b.next_batch(10.5) == (None, [])
    b.add(recs(2), now=10.6)
    assert seqs(b.next_batch(11.0)[0]) == [1, 2]  # window of the oldest record elapsed


def test_full_batch_does_not_wait_for_window() -> None:
    b = batcher(batch_size=2, batching_window_s=60)
    b.add(recs(1, 2, 3), now=0)
    assert seqs(b.next_batch(0)[0]) == [1, 2]


def test_flush_ignores_window() -> None:
    b = batcher(batch_size=10, batching_window_s=60)
    b.add(recs(1), now=0)
    assert seqs(b.next_batch(0, flush=True)[0]) == [1]


def test_complete_rejects_unknown_batch() -> None:
    b = batcher()
    b.add(recs(1), now=0)
    b.next_batch(0)
    with pytest.raises(ValueError):
        b.complete(Batch(tuple(recs(1)), 0), OK)


# -- function errors, retries, destination ------------------------------------------------------
def test_function_error_retries_whole_batch_until_exhausted() -> None:
    b = batcher(batch_size=10, max_retry_attempts=2)
    b.add(recs(1, 2, 3), now=0)
    assert deliver(b, ERROR) == ([1, 2, 3], [])
    batch, _ = b.next_batch(0)
    assert batch is not None and batch.is_retry and batch.attempt == 1
    assert b.complete(batch, ERROR) == []
    records, discarded = deliver(b, ERROR)
    assert records == [1, 2, 3]
    (d,) = discarded
    assert d.condition == RETRY_EXHAUSTED
    assert d.invoke_count == 3
    assert d.function_error == "Unhandled"
    assert d.request_id == "req-err"
    assert [r.sequence_number for r in d.records] == ["1", "2", "3"]
    assert b.idle  # the mapping moved on


def test_records_after_a_failing_batch_wait_for_it() -> None:
    b = batcher(batch_size=2, max_retry_attempts=1)
    b.add(recs(1, 2, 3, 4), now=0)
    assert deliver(b, ERROR)[0] == [1, 2]
    b.add(recs(5), now=0)
    assert deliver(b, OK)[0] == [1, 2]  # retry succeeds
    assert deliver(b, OK)[0] == [3, 4]
    assert deliver(b, OK)[0] == [5]


def test_zero_retries_discards_on_first_error() -> None:
    b = batcher(max_retry_attempts=0)
    b.add(recs(1), now=0)
    _, discarded = deliver(b, ERROR)
    assert discarded[0].invoke_count == 1


def test_infinite_retries_by_default() -> None:
    b = batcher()
    b.add(recs(1), now=0)
    for _ in range(50):
        assert deliver(b, ERROR) == ([1], [])


# -- ReportBatchItemFailures --------------------------------------------------------------------
def test_partial_failure_checkpoints_at_lowest_failed_sequence() -> None:
    # GIVEN a batch of five with ReportBatchItemFailures
    b = batcher(report_batch_item_failures=True, max_retry_attempts=3)
    b.add(recs(10, 20, 30, 40, 50), now=0)
    # WHEN the function reports 40 and 30 as failed (any order)
    assert deliver(b, item_failures("40", "30")) == ([10, 20, 30, 40, 50], [])
    # THEN 30 and every later record of the batch are delivered again
    assert deliver(b, OK)[0] == [30, 40, 50]
    assert b.idle


def test_partial_failures_exhaust_retries_of_the_remainder() -> None:
    b = batcher(report_batch_item_failures=True, max_retry_attempts=1)
    b.add(recs(1, 2, 3), now=0)
    deliver(b, item_failures("2"))
    records, discarded = deliver(b, item_failures("2"))
    assert records == [2, 3]
    (d,) = discarded
    assert [r.sequence_number for r in d.records] == ["2", "3"]
    assert d.function_error is None  # the function did not error, it reported failures


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "2"}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": "2"},
        "ok",
        ["2"],
    ],
)
def test_malformed_item_failures_fail_the_whole_batch(payload: Any) -> None:
    b = batcher(report_batch_item_failures=True, bisect_on_error=True)
    b.add(recs(1, 2, 3), now=0)
    deliver(b, Outcome(ok=True, payload=payload))
    assert deliver(b, OK)[0] == [1, 2, 3]  # whole batch again, not bisected


@pytest.mark.parametrize(
    "payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}]
)
def test_empty_item_failures_mean_success(payload: Any) -> None:
    b = batcher(report_batch_item_failures=True)
    b.add(recs(1, 2), now=0)
    deliver(b, Outcome(ok=True, payload=payload))
    assert b.idle


def test_item_failures_ignored_without_report_batch_item_failures() -> None:
    b = batcher()
    b.add(recs(1, 2), now=0)
    deliver(b, item_failures("1"))
    assert b.idle


# -- bisection ----------------------------------------------------------------------------------
def test_bisect_isolates_a_poison_record() -> None:
    # GIVEN four records where only 3 makes the function fail, bisection on, one retry
    b = batcher(bisect_on_error=True, max_retry_attempts=1)
    b.add(recs(1, 2, 3, 4), now=0)

    def run(batch_seqs: list[int]) -> Outcome:
        return ERROR if 3 in batch_seqs else OK

    delivered: list[list[int]] = []
    discarded = []
    while not b.idle:
        batch, _ = b.next_batch(0)
        assert batch is not None
        delivered.append(seqs(batch))
        discarded += b.complete(batch, run(seqs(batch)))
    # THEN halves are tried first-half first, and only the poison record is discarded
    assert delivered == [[1, 2, 3, 4], [1, 2], [3, 4], [3], [3], [4]]
    (d,) = discarded
    assert [r.sequence_number for r in d.records] == ["3"]
    assert d.condition == RETRY_EXHAUSTED
    assert d.invoke_count == 2


def test_bisect_with_partial_failure_retries_only_the_rest() -> None:
    b = batcher(bisect_on_error=True, report_batch_item_failures=True)
    b.add(recs(1, 2, 3, 4), now=0)
    deliver(b, item_failures("2"))
    assert deliver(b, OK)[0] == [2, 3, 4]


# -- record age ---------------------------------------------------------------------------------
def test_records_older_than_max_age_are_discarded_before_invoking() -> None:
    b = batcher(max_record_age_s=60)
    b.add(recs(1, arrival=0) + recs(2, arrival=100), now=100)
    batch, aged = b.next_batch(now=120)
    assert seqs(batch) == [2]
    (d,) = aged
    assert d.condition == RECORD_AGE_EXCEEDED
    assert [r.sequence_number for r in d.records] == ["1"]


def test_retrying_batch_ages_out() -> None:
    b = batcher(max_record_age_s=60)
    b.add(recs(1, 2, arrival=0), now=0)
    deliver(b, ERROR, now=10)
    batch, aged = b.next_batch(now=61)
    assert batch is None
    assert [r.sequence_number for r in aged[0].records] == ["1", "2"]
    assert aged[0].invoke_count == 1
    assert b.idle


# -- destination message ------------------------------------------------------------------------
def test_failure_record_shape() -> None:
    b = batcher(max_retry_attempts=0)
    b.add(recs(7, 9, arrival=1573689799.0), now=0)
    _, (d,) = deliver(b, ERROR)
    msg = failure_record(
        d,
        shard_id="shardId-1",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        now=1573690429.717,
    )
    assert msg == {
        "requestContext": {
            "requestId": "req-err",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 1,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2019-11-14T00:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-1",
            "startSequenceNumber": "7",
            "endSequenceNumber": "9",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:03:19Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:03:19Z",
            "batchSize": 2,
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        },
    }


def test_parse_item_failures() -> None:
    assert parse_item_failures({"batchItemFailures": [{"itemIdentifier": "5"}]}) == ["5"]
    assert parse_item_failures(None) is None
    assert parse_item_failures({"batchItemFailures": [{"itemIdentifier": 5}]}) == []


def test_sequence_numbers_order_numerically() -> None:
    assert R("99", 0, {}).order < R("100", 0, {}).order


# -- properties over random outcomes ------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=12),
    batch_size=st.integers(min_value=1, max_value=5),
    max_retry=st.integers(min_value=0, max_value=3),
    bisect=st.booleans(),
    report=st.booleans(),
    choices=st.lists(st.integers(min_value=0, max_value=99), max_size=60),
)
def test_every_record_ends_done_or_discarded_once_and_in_order(
    count: int, batch_size: int, max_retry: int, bisect: bool, report: bool, choices: list[int]
) -> None:
    # GIVEN any configuration with finite retries and any sequence of invoke outcomes
    b = batcher(
        batch_size=batch_size,
        max_retry_attempts=max_retry,
        bisect_on_error=bisect,
        report_batch_item_failures=report,
    )
    b.add(recs(*range(1, count + 1)), now=0)
    done: list[int] = []
    discarded: list[int] = []
    steps = iter(choices)
    for _ in range(10_000):
        batch, _aged = b.next_batch(0)
        if batch is None:
            break
        ids = seqs(batch)
        # records before the batch's first one are finished: delivery never goes back
        assert all(i > max(done + discarded, default=0) for i in ids)
        roll = next(steps, 0)
        if roll < 50:
            outcome, ok_upto = OK, len(ids)
        elif roll < 75:
            outcome, ok_upto = ERROR, 0
        else:
            cut = roll % len(ids)
            outcome, ok_upto = item_failures(str(ids[cut])), (cut if report else len(ids))
        lost = b.complete(batch, outcome)
        for d in lost:
            discarded += [int(r.sequence_number) for r in d.records]
        if outcome.ok:
            done += ids[:ok_upto]
    # THEN the shard drained, and each record finished exactly once, in shard order
    assert b.idle
    assert sorted(done + discarded) == list(range(1, count + 1))
    assert done == sorted(done)
