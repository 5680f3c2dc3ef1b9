"""SQS records and which messages get deleted after an invoke (pure parts of sqs_triggers.py)."""

from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from ws_emulator.sqs_triggers import sqs_record, succeeded_message_ids

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
