"""Lambda DynamoDB records from GetRecords output, and the shard poller against a fake Streams API."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from botocore.exceptions import ClientError

from tests.emulator.unit.doubles import RecordingRuntime
from ws_emulator.sources.dynamodb_streams import lambda_record
from ws_emulator.sources.supervisor import EventSources
from ws_emulator.template.loader import load_template
from ws_emulator.template.specs import Template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def raw(event_name: str = "INSERT", **dynamodb: Any) -> dict[str, Any]:
    body = {
        "ApproximateCreationDateTime": datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        "Keys": {"PK": {"S": "a"}},
        "SequenceNumber": "1100000000017454423009",
        "SizeBytes": 27,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    } | dynamodb
    return {
        "eventID": "e1",
        "eventName": event_name,
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
    }


def test_record_matches_lambda_shape() -> None:
    record = lambda_record(
        raw(NewImage={"PK": {"S": "a"}, "blob": {"B": b"\x00\x01"}}),
        stream_arn=ARN,
        region="us-east-1",
        ttl_deleted=False,
    )
    event = record.event
    assert event["eventSourceARN"] == ARN
    assert event["eventVersion"] == "1.1"
    assert event["eventSource"] == "aws:dynamodb"
    assert event["dynamodb"]["ApproximateCreationDateTime"] == 1767323045
    assert event["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # base64, as Lambda sends binary
    assert list(event["dynamodb"]) == [
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    ]
    assert "userIdentity" not in event
    assert record.sequence_number == "1100000000017454423009"
    assert record.arrival == datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC).timestamp()
    DynamoDBStreamModel.model_validate({"Records": [event]})


def test_ttl_removal_carries_service_identity() -> None:
    record = lambda_record(
        raw("REMOVE", OldImage={"PK": {"S": "a"}}), stream_arn=ARN, region="us-east-1", ttl_deleted=True
    )
    assert record.event["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    DynamoDBStreamModel.model_validate({"Records": [record.event]})


# -- the shard poller against a fake DynamoDB Streams API ----------------------------------------
class FakeStreams:
    """Two shards: a closed parent and its open child; can fail one GetRecords call."""

    def __init__(self) -> None:
        self.shards: dict[str, list[dict[str, Any]]] = {
            "parent": [_raw_record(1, "p1"), _raw_record(2, "p2")],
            "child": [_raw_record(3, "c1")],
        }
        self.closed = {"parent"}
        self.listed = ["parent"]
        self.fail_next = False
        self.iterator_requests: list[dict[str, Any]] = []

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        shards = []
        for shard_id in self.listed:
            rng: dict[str, str] = {"StartingSequenceNumber": "1"}
            if shard_id in self.closed:
                rng["EndingSequenceNumber"] = "2"
            shard: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": rng}
            if shard_id == "child":
                shard["ParentShardId"] = "parent"
            shards.append(shard)
        return {"StreamDescription": {"Shards": shards}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.iterator_requests.append(kwargs)
        records = self.shards[kwargs["ShardId"]]
        kind = kwargs["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            pos = 0
        elif kind == "LATEST":
            pos = len(records)
        else:
            pos = next(
                i + 1
                for i, r in enumerate(records)
                if r["dynamodb"]["SequenceNumber"] == kwargs["SequenceNumber"]
            )
        return {"ShardIterator": f"{kwargs['ShardId']}|{pos}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        if self.fail_next:
            self.fail_next = False
            raise ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "old"}}, "GetRecords")
        shard_id, pos_text = ShardIterator.split("|")
        pos = int(pos_text)
        records = self.shards[shard_id][pos : pos + 1]  # one record per call, to exercise iteration
        new_pos = pos + len(records)
        done = shard_id in self.closed and new_pos >= len(self.shards[shard_id])
        return {"Records": records, "NextShardIterator": None if done else f"{shard_id}|{new_pos}"}


def _raw_record(seq: int, pk: str) -> dict[str, Any]:
    return raw(Keys={"PK": {"S": pk}}, SequenceNumber=str(seq), NewImage={"kind": {"S": "message"}})


class FakeAws:
    def __init__(self, streams: FakeStreams) -> None:
        self.streams = streams

    def client(self, service: str) -> Any:
        return self.streams if service == "dynamodbstreams" else None

    def stream_arn(self, template: Template, table_id: str) -> str:
        return ARN


async def test_trim_horizon_parent_then_child_and_recovery_after_expired_iterator() -> None:
    # GIVEN a mapping reading from TRIM_HORIZON, a parent shard and (later) its child
    template = load_template(FIXTURE)
    function = template.functions["BatchFunction"]
    source = replace(
        function.stream_sources[0], starting_position="TRIM_HORIZON", filters=[], max_record_age_s=-1
    )
    template.functions["BatchFunction"] = replace(
        function, stream_sources=[source], sqs_sources=[], schedules=[]
    )
    streams = FakeStreams()
    streams.fail_next = True
    runtime = RecordingRuntime()
    sources = EventSources(
        template,
        FakeAws(streams),  # type: ignore[arg-type]
        runtime,  # type: ignore[arg-type]
        poll_interval_s=0.01,
        enable_ttl=False,
        shard_refresh_s=0.05,
    )
    await sources.start()
    try:
        # WHEN the child shard appears
        streams.listed.append("child")
        await sources.drain(2.0)
        await asyncio.sleep(0.2)
        await sources.drain(2.0)
    finally:
        await sources.stop()
    # THEN every record arrives once, parent before child, despite the failed GetRecords
    keys = [r["dynamodb"]["Keys"]["PK"]["S"] for e in runtime.events for r in e["Records"]]
    assert keys == ["p1", "p2", "c1"]
    assert any(req.get("ShardIteratorType") == "TRIM_HORIZON" for req in streams.iterator_requests)
