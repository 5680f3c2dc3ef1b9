"""The two-level fan-out under moto: FanoutFunction enqueues on a FIFO queue declared as template.yaml
declares WideFanoutQueue, FanoutChunkFunction's handler consumes it as Lambda's SQS mapping would
(moto holds back a message group while one of its messages is in flight, as SQS FIFO does)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from parley import deps
from tests.integration.harness import Harness
from tests.support.handlers import LambdaContext, load
from tests.support.template import read_template
from tests.support.world import MotoAws, clear_cached_clients

MEMBERS = 12
THRESHOLD = 5


def _queue_attributes() -> dict[str, str]:
    props = read_template()["Resources"]["WideFanoutQueue"]["Properties"]
    names = ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")
    return {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k]) for k in names}


class ChunkQueue:
    def __init__(self, aws: MotoAws) -> None:
        self.sqs = aws.sqs
        attributes = _queue_attributes()
        self.url = self.sqs.create_queue(QueueName="WideFanoutQueue.fifo", Attributes=attributes)["QueueUrl"]
        self.invocations = 0
        self.responses: list[dict[str, Any]] = []

    def depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def drain(self, batch_size: int = 1) -> None:
        """Receive and hand to the chunk handler until the queue is empty, deleting what succeeded."""
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=batch_size, AttributeNames=["All"], VisibilityTimeout=0
            ).get("Messages", [])
            if not got:
                return
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WideFanoutQueue.fifo",
                    "awsRegion": "us-east-1",
                }
                for m in got
            ]
            response = load("fanout_chunk").handler({"Records": records}, LambdaContext())
            self.invocations += 1
            self.responses.append(response)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            for record in records:
                if record["messageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=record["receiptHandle"])
            if failed:
                return  # they come back after the visibility timeout; the test decides when


@pytest.fixture
def wide(moto_aws: MotoAws, fanout_pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> Any:
    queue = ChunkQueue(moto_aws)
    for name, value in {
        "WIDE_FANOUT_THRESHOLD": str(THRESHOLD),
        "WIDE_FANOUT_CHUNK_SIZE": "3",
        "WIDE_FANOUT_GROUPS": "3",
        "WIDE_FANOUT_QUEUE_URL": queue.url,
    }.items():
        monkeypatch.setenv(name, value)
    clear_cached_clients()
    harness = Harness(moto_aws, fanout_pool)
    monkeypatch.setattr(deps, "services", lambda: harness.services)
    return harness, queue


def _members(parley: Harness, queue: ChunkQueue) -> list[Any]:
    members = [parley.connect(f"u{i:02d}", name=f"U{i}") for i in range(MEMBERS)]
    for m in members:
        assert m.send({"action": "join", "channel": "general"})["type"] == "joined"  # type: ignore[index]
    parley.pump()
    queue.drain()
    parley.notifier.clear()
    return members


def test_a_wide_channel_is_posted_by_the_chunk_workers_once_and_in_order(wide: Any) -> None:
    parley, queue = wide
    members = _members(parley, queue)
    # WHEN three messages are written and fanned out as one stream batch, then one more
    for text in ("one", "two", "three"):
        members[0].send({"action": "message", "channel": "general", "text": text})
    parley.pump()
    # THEN FanoutFunction posted nothing itself: the chunks wait on the queue
    assert parley.notifier.posts == 0
    assert queue.depth() >= 3  # at least one chunk per group
    queue.drain()
    members[1].send({"action": "message", "channel": "general", "text": "four"})
    parley.pump()
    queue.drain()
    # and every member got every message exactly once, in order
    for m in members:
        assert [e["text"] for e in m.events_of("message")] == ["one", "two", "three", "four"]
    assert all(r == {"batchItemFailures": []} for r in queue.responses)


def test_a_retried_stream_record_enqueues_nothing_twice(wide: Any) -> None:
    # GIVEN a wide channel's message whose stream record was handed off
    parley, queue = wide
    members = _members(parley, queue)
    members[0].send({"action": "message", "channel": "general", "text": "once"})
    records = parley.pump()
    depth = queue.depth()
    # WHEN the stream mapping delivers the same record again (at least once)
    load("fanout").handler({"Records": records}, LambdaContext(function_name="parley-fanout"))
    # THEN FIFO deduplication dropped the repeated chunks, and each member gets the message once
    assert queue.depth() == depth
    queue.drain()
    for m in members:
        assert [e["text"] for e in m.events_of("message")] == ["once"]


def test_a_gone_connection_in_a_chunk_is_cleaned_up_and_a_throttled_one_retried(wide: Any) -> None:
    parley, queue = wide
    members = _members(parley, queue)
    gone, throttled = members[3], members[7]
    parley.notifier.gone.add(gone.connection_id)
    parley.notifier.throttled.add(throttled.connection_id)
    members[0].send({"action": "message", "channel": "general", "text": "hello"})
    parley.pump()
    queue.drain()
    # THEN the throttled connection's chunk was reported failed (SQS hands it back), and its group stops
    assert any(r["batchItemFailures"] for r in queue.responses)
    # WHEN the throttling is over and SQS hands the chunk back
    parley.notifier.throttled.clear()
    queue.drain()
    # THEN the throttled connection got the message once, and members of its chunk may have it twice
    # (at least once; clients drop repeats by event id), every other member once
    assert [e["text"] for e in throttled.events_of("message")] == ["hello"]
    for m in members:
        if m is not gone:
            ids = [e["id"] for e in m.events_of("message")]
            assert len(set(ids)) == 1 and 1 <= len(ids) <= 2
    # and the gone connection is forgotten: its connection and its subscription are deleted
    state = parley.aws.dynamodb.Table("StateTable")
    sub = state.get_item(Key={"PK": "CHAN#acme#general", "SK": f"SUB#{gone.connection_id}"})
    assert "Item" not in sub
    assert json.dumps(parley.store.get_connection(gone.connection_id)) == "null"
