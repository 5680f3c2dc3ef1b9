"""Which IAM action and resource ARN each AWS call is authorized as (AWS Service Authorization Reference)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ws_emulator.aws.iam import Iam, access_key_for
from ws_emulator.template.loader import load_template

FIXTURES = Path(__file__).parents[1] / "fixtures"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table"


@pytest.fixture(scope="module")
def iam():
    return Iam(load_template(FIXTURES / "iam_app" / "template.yaml"))


@pytest.mark.parametrize(
    ("target", "params", "checks"),
    [
        ("DynamoDB_20120810.PutItem", {"TableName": "T"}, [("dynamodb:PutItem", f"{ARN}/T")]),
        (
            "DynamoDB_20120810.Query",
            {"TableName": "T", "IndexName": "Due"},
            [("dynamodb:Query", f"{ARN}/T/index/Due")],
        ),
        (
            "DynamoDB_20120810.BatchWriteItem",
            {"RequestItems": {"A": [], "B": []}},
            [("dynamodb:BatchWriteItem", f"{ARN}/A"), ("dynamodb:BatchWriteItem", f"{ARN}/B")],
        ),
        (
            "DynamoDB_20120810.TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "A"}},
                    {"Update": {"TableName": "B"}},
                    {"ConditionCheck": {"TableName": "A"}},
                ]
            },
            [
                ("dynamodb:PutItem", f"{ARN}/A"),
                ("dynamodb:UpdateItem", f"{ARN}/B"),
                ("dynamodb:ConditionCheckItem", f"{ARN}/A"),
            ],
        ),
        (
            "DynamoDB_20120810.TransactGetItems",
            {"TransactItems": [{"Get": {"TableName": "A"}}]},
            [("dynamodb:GetItem", f"{ARN}/A")],
        ),
        (
            "DynamoDBStreams_20120810.GetRecords",
            {"ShardIterator": f"{ARN}/T/stream/2026|1|abc"},
            [("dynamodb:GetRecords", f"{ARN}/T/stream/2026")],
        ),
        (
            "AmazonSQS.SendMessageBatch",
            {"QueueUrl": "http://127.0.0.1:5000/123456789012/q1"},
            [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q1")],
        ),
        (
            "AmazonSSM.GetParameter",
            {"Name": "/app/secret"},
            [("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/app/secret")],
        ),
        ("AmazonSTS.GetCallerIdentity", {}, []),
    ],
)
def test_each_call_is_checked_as_the_action_and_arn_aws_authorizes(iam, target, params, checks):
    assert iam.request_checks(target, {}, params) == checks


def test_the_query_protocol_names_its_action_in_the_form(iam):
    form = {"Action": "ReceiveMessage", "QueueUrl": "http://h/123456789012/q"}
    expected = [("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:q")]
    assert iam.request_checks("", form, {}) == expected


def test_only_a_functions_own_keys_name_a_caller(iam):
    key = access_key_for("WriterFunction")
    header = f"AWS4-HMAC-SHA256 Credential={key}/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host"
    caller = iam.caller(header)
    assert caller is not None and caller.function_id == "WriterFunction"
    assert iam.caller(header.replace(key, "testing")) is None
    assert iam.caller(None) is None


def test_sam_adds_the_stream_and_queue_execution_roles_for_event_sources():
    # What SAM attaches by itself: AWSLambdaDynamoDBExecutionRole and AWSLambdaSQSQueueExecutionRole
    template = load_template(FIXTURES / "app" / "template.yaml")
    iam = Iam(template)
    caller = iam.caller(
        f"Credential={access_key_for('BatchFunction')}/20261202/us-east-1/dynamodb/aws4_request"
    )
    assert caller is not None
    stream = template.tables["ItemsTable"].name
    assert iam.decide(caller, [("dynamodb:GetRecords", f"{ARN}/{stream}/stream/2026-01-01")]) is None
    assert iam.decide(caller, [("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:any")]) is None
    # and nothing SAM did not add
    denial = iam.decide(caller, [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:any")])
    assert denial is not None and not denial.explicit


MAPPING_FIXTURE = FIXTURES / "iam_mapping" / "template.yaml"


def test_a_role_that_cannot_read_its_event_sources_is_refused_as_lambda_would(tmp_path):
    template = load_template(MAPPING_FIXTURE)
    problems = Iam(template).mapping_problems(template)
    assert problems == [
        (
            "Worker",
            "Cannot access stream of Items. Please ensure the role can perform the GetRecords, "
            "GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.",
        ),
        ("Worker", "The provided execution role does not have permissions to call DeleteMessage on SQS"),
    ]
    # and SAM's generated role, which attaches the execution roles itself, can
    sam_role = MAPPING_FIXTURE.read_text().replace("      Role: !GetAtt Bare.Arn\n", "")
    path = tmp_path / "template.yaml"
    path.write_text(sam_role.replace("CodeUri: .", f"CodeUri: {MAPPING_FIXTURE.parent}"))
    assert Iam(load_template(path)).mapping_problems(load_template(path)) == []
