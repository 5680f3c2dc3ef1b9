"""LocalAws: embedded moto server, provisioning from a template, external endpoints."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from ws_emulator.aws.services import LocalAws, localstack_endpoint
from ws_emulator.faults import Faults
from ws_emulator.template.loader import load_template
from ws_emulator.template.specs import Template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"


@pytest.fixture
def template() -> Template:
    # A fresh stack name per test: moto servers in one process share their backends.
    return load_template(FIXTURE, stack_name=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def external_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def check_provisioned(aws: LocalAws, template: Template) -> None:
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=template.tables["ItemsTable"].name)["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["Due"]
    ttl = ddb.describe_time_to_live(TableName=template.tables["ItemsTable"].name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    sqs = aws.client("sqs")
    url = aws.queue_url(template, "WorkQueue")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "2"
    assert template.queues["WorkDLQ"].arn in attrs["RedrivePolicy"]
    table_arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{template.tables['ItemsTable'].name}"
    assert aws.stream_arn(template, "ItemsTable").startswith(f"{table_arn}/stream/")


def test_embedded_server_provisions_template_idempotently(template: Template) -> None:
    aws = LocalAws()
    aws.start()
    try:
        assert aws.endpoint_url.startswith("http://127.0.0.1:")
        aws.provision(template, {"/app/secret": "s3cr3t"})
        aws.provision(template, {"/app/secret": "s3cr3t"})  # a second run changes nothing
        check_provisioned(aws, template)
        param = aws.client("ssm").get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]
        assert (param["Type"], param["Value"]) == ("SecureString", "s3cr3t")
        env = aws.function_env()
        assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
        assert env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
        assert "AWS_ENDPOINT_URL_DYNAMODB" not in env
    finally:
        aws.stop()


def test_external_endpoint_for_everything(template: Template, external_server: str) -> None:
    aws = LocalAws(endpoint=external_server)
    aws.start()  # starts nothing: every client goes to the external endpoint
    assert not aws.embedded
    aws.provision(template, {})
    check_provisioned(aws, template)
    assert aws.client("sqs").meta.endpoint_url == external_server
    assert aws.function_env()["AWS_ENDPOINT_URL"] == external_server
    # LocalStack reads a 12-digit access key as the account: ARNs then match the template's
    assert aws.function_env()["AWS_ACCESS_KEY_ID"] == "123456789012"
    aws.stop()


def test_external_dynamodb_endpoint_only(template: Template, external_server: str) -> None:
    aws = LocalAws(dynamodb_endpoint=external_server)
    aws.start()
    try:
        aws.provision(template, {})
        assert aws.client("dynamodb").meta.endpoint_url == external_server
        assert aws.client("dynamodbstreams").meta.endpoint_url == external_server
        assert aws.client("sqs").meta.endpoint_url == aws.endpoint_url != external_server
        env = aws.function_env()
        assert env["AWS_ENDPOINT_URL_DYNAMODB"] == external_server
        assert env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == external_server
        assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
        check_provisioned(aws, template)
    finally:
        aws.stop()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://localhost:4566"),
        # localstack-client 2.x: AWS_ENDPOINT_URL wins over everything else
        ({"AWS_ENDPOINT_URL": "http://moto:5000", "LOCALSTACK_HOST": "ls:4510"}, "http://moto:5000"),
        ({"LOCALSTACK_HOST": "ls:4510"}, "http://ls:4510"),
        ({"LOCALSTACK_HOST": "ls"}, "http://ls:4566"),
        # EDGE_PORT was removed in 2.0: it no longer moves the port
        ({"LOCALSTACK_HOST": "ls", "EDGE_PORT": "4577"}, "http://ls:4566"),
        ({"USE_SSL": "true"}, "https://localhost:4566"),
    ],
)
def test_localstack_endpoint_discovery_follows_localstack_client_2(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "EDGE_PORT", "USE_SSL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert localstack_endpoint() == expected


def test_embedded_dynamodb_throttles_functions_requests_but_not_its_own(template: Template) -> None:
    faults = Faults()
    aws = LocalAws(faults=faults)
    aws.start()
    try:
        aws.provision(template)
        table = template.tables["ItemsTable"].name
        faults.configure({"dynamodbThrottleRate": 1.0})
        # a function's client (plain boto3, configured by the environment), without retries
        function_client = boto3.client(
            "dynamodb",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        with pytest.raises(ClientError) as throttled:
            function_client.get_item(TableName=table, Key={"PK": {"S": "a"}, "SK": {"S": "b"}})
        assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        # control-plane calls and the emulator's own requests are never throttled
        assert function_client.describe_table(TableName=table)["Table"]["TableName"] == table
        assert "Item" not in aws.client("dynamodb").get_item(
            TableName=table, Key={"PK": {"S": "a"}, "SK": {"S": "b"}}
        )
        faults.clear()
        assert "Item" not in function_client.get_item(
            TableName=table, Key={"PK": {"S": "a"}, "SK": {"S": "b"}}
        )
    finally:
        aws.stop()


def test_injected_transaction_conflicts_reach_boto3_with_dynamodbs_cancellation_reasons(
    template: Template,
) -> None:
    faults = Faults()
    aws = LocalAws(faults=faults)
    aws.start()
    try:
        aws.provision(template)
        table = template.tables["ItemsTable"].name
        function_client = boto3.client(
            "dynamodb",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        items: list[Any] = [
            {"Put": {"TableName": table, "Item": {"PK": {"S": f"t{i}"}, "SK": {"S": "A"}}}} for i in range(3)
        ]
        # GIVEN every TransactWriteItems of a function set to conflict
        faults.configure({"transactionConflictRate": 1.0, "seed": 5})
        # WHEN a function's client writes a transaction of three items
        with pytest.raises(ClientError) as cancelled:
            function_client.transact_write_items(TransactItems=items)
        # THEN boto3 sees DynamoDB's TransactionCanceledException with one reason per item, in order
        response = cancelled.value.response
        assert response["Error"]["Code"] == "TransactionCanceledException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        reasons = response["CancellationReasons"]
        assert len(reasons) == 3
        conflicted = [r for r in reasons if r["Code"] == "TransactionConflict"]
        assert len(conflicted) == 1 and conflicted[0]["Message"]
        assert [r for r in reasons if r["Code"] != "TransactionConflict"] == [{"Code": "None"}] * 2
        codes = ", ".join(r["Code"] for r in reasons)
        assert response["Error"]["Message"].endswith(f"specific reasons [{codes}]")
        # AND nothing was written; the emulator's own transactions are never cancelled
        assert (
            "Items" not in function_client.scan(TableName=table)
            or not function_client.scan(TableName=table)["Items"]
        )
        aws.client("dynamodb").transact_write_items(TransactItems=items)
        assert faults.as_dict()["transactionConflicts"] == 1
        # AND with the rate back at 0 a function's transaction goes through
        faults.clear()
        function_client.transact_write_items(TransactItems=items)
    finally:
        aws.stop()
