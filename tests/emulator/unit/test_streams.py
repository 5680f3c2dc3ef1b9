"""Building Lambda DynamoDB records from GetRecords output (pure part of streams.py)."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from ws_emulator.streams import lambda_record

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
