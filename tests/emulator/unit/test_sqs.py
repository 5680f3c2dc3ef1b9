"""SQS records, which messages get deleted after an invoke, and batch concurrency per mapping."""

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from tests.emulator.unit.doubles import RecordingRuntime, run_inline
from ws_emulator.runtime.pool import InvokeResult
from ws_emulator.sources.sqs import SqsMapping, filter_view, sqs_record, succeeded_message_ids
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"

ARN = "arn:aws:sqs:us-east-1:123456789012:q"
MESSAGE = {
    "MessageId": "m1",
    "ReceiptHandle": "rh1",
    "MD5OfBody": "abc",
    "Body": "hello",
    "Attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1",
        "SenderId": "s",
        "ApproximateFirstReceiveTimestamp": "2",
    },
    "MD5OfMessageAttributes": "def",
    "MessageAttributes": {
        "s": {"StringValue": "x", "DataType": "String"},
        "b": {"BinaryValue": b"\x01", "DataType": "Binary"},
    },
}


def test_record_shape() -> None:
    record = sqs_record(MESSAGE, queue_arn=ARN, region="us-east-1")
    assert record == {
        "messageId": "m1",
        "receiptHandle": "rh1",
        "body": "hello",
        "attributes": MESSAGE["Attributes"],
        "messageAttributes": {
            "s": {"stringValue": "x", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {
                "binaryValue": "AQ==",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": "abc",
        "md5OfMessageAttributes": "def",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "us-east-1",
    }
    SqsModel.model_validate({"Records": [record]})


RECORDS = [{"messageId": m} for m in ("a", "b", "c")]


@pytest.mark.parametrize(
    ("ok", "payload", "report", "expected"),
    [
        (True, None, False, ["a", "b", "c"]),
        (False, None, False, []),
        (False, None, True, []),
        (True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, True, ["a", "c"]),
        (True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, False, ["a", "b", "c"]),
        (True, {"batchItemFailures": []}, True, ["a", "b", "c"]),
        (True, {"batchItemFailures": [{"itemIdentifier": ""}]}, True, []),
        (True, {"batchItemFailures": [{"itemIdentifier": "zz"}]}, True, []),
    ],
)
def test_succeeded_message_ids(ok: bool, payload: Any, report: bool, expected: list[str]) -> None:
    assert succeeded_message_ids(RECORDS, ok, payload, report) == expected


# -- the mapping's loop against a fake queue and a slow fake function -----------------------------
class FakeQueue:
    def __init__(self, count: int) -> None:
        self.messages = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": str(i), "MD5OfBody": ""}
            for i in range(count)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        batch, self.messages = self.messages[:1], self.messages[1:]
        return {"Messages": batch}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]


class SlowRuntime:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def invoke(self, function_id: str, event: dict[str, Any]) -> InvokeResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.1)
        self.running -= 1
        return InvokeResult(True, None, None, 100.0, function_id, "r")


async def run_mapping(queue_arn: str, max_concurrency: int | None) -> tuple[FakeQueue, SlowRuntime]:
    template = load_template(FIXTURE)
    function = template.functions["BatchFunction"]
    source = replace(function.sqs_sources[0], batch_size=1, max_concurrency=max_concurrency)
    queue, runtime = FakeQueue(6), SlowRuntime()

    mapping = SqsMapping(
        function,
        source,
        queue_url="u",
        queue_arn=queue_arn,
        region="us-east-1",
        client=queue,
        runtime=runtime,  # type: ignore[arg-type]
        run_blocking=run_inline,
    )
    task = asyncio.create_task(mapping.run())
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(queue.deleted) == 6:
            break
    task.cancel()
    return queue, runtime


async def test_standard_queue_batches_run_concurrently_up_to_the_cap() -> None:
    queue, runtime = await run_mapping("arn:aws:sqs:us-east-1:123456789012:q", max_concurrency=3)
    assert sorted(queue.deleted) == [f"h{i}" for i in range(6)]
    assert runtime.peak == 3


async def test_fifo_queue_delivers_one_batch_at_a_time() -> None:
    queue, runtime = await run_mapping("arn:aws:sqs:us-east-1:123456789012:q.fifo", max_concurrency=None)
    assert queue.deleted == [f"h{i}" for i in range(6)]
    assert runtime.peak == 1


def test_filter_view_parses_json_bodies_only() -> None:
    assert filter_view({"body": '{"kind": "a"}', "x": 1}) == {"body": {"kind": "a"}, "x": 1}
    assert filter_view({"body": "plain"}) == {"body": "plain"}
    assert filter_view({"body": "[1, 2]"}) == {"body": "[1, 2]"}


async def test_filtered_out_messages_are_deleted_without_invoking() -> None:
    # GIVEN a mapping that only wants bodies with kind "keep"
    template = load_template(FIXTURE)
    function = template.functions["BatchFunction"]
    source = replace(function.sqs_sources[0], batch_size=10, filters=[{"body": {"kind": ["keep"]}}])
    queue = FakeQueue(0)
    queue.messages = [
        {"MessageId": mid, "ReceiptHandle": f"h-{mid}", "Body": body, "MD5OfBody": ""}
        for mid, body in (("a", '{"kind": "keep"}'), ("b", '{"kind": "drop"}'), ("c", "plain"))
    ]
    runtime = RecordingRuntime()

    mapping = SqsMapping(
        function,
        source,
        queue_url="u",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        region="us-east-1",
        client=queue,
        runtime=runtime,  # type: ignore[arg-type]
        run_blocking=run_inline,
    )
    # WHEN the three messages are polled
    for _ in range(3):
        await mapping.poll_once()
    # THEN only the matching one reached the function, and all three left the queue
    assert [r["messageId"] for e in runtime.events for r in e["Records"]] == ["a"]
    assert sorted(queue.deleted) == ["h-a", "h-b", "h-c"]
