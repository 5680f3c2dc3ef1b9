"""Shared fixtures: a moto-backed AWS with template.yaml's own tables, and Parley wired to it with fakes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_SERVICE_NAME": "parley",
    "POWERTOOLS_METRICS_NAMESPACE": "Parley",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "STATE_TABLE": "StateTable",
    "MESSAGES_TABLE": "MessagesTable",
    "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "CONNECTIONS_ENDPOINT": "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
    "PRESENCE_QUEUE_URL": "",
    "PRESENCE_GRACE_SECONDS": "5",
    "RATE_BURST": "20",
    "RATE_PER_SECOND": "5",
    "JWT_SECRET_PARAM": "/parley/jwt-secret",
    "JWKS_URL": "",
    "JWT_ISSUER": "",
    "JWT_AUDIENCE": "",
}
# Only loopback: never let a test reach a real AWS endpoint, whatever the developer's shell has set.
for _name in list(os.environ):
    if _name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE")):
        del os.environ[_name]
os.environ.update({k: v for k, v in TEST_ENV.items() if k.startswith(("AWS_", "POWERTOOLS_"))})

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    from parley import aws, config, deps

    for cached in (config.settings, deps.services, deps.verifier, aws.dynamodb, aws.sqs, aws.management_api):
        cached.cache_clear()
    return dict(TEST_ENV)


@dataclass
class MotoAws:
    dynamodb: Any
    client: Any
    streams: Any
    sqs: Any
    ssm: Any
    ttl_attributes: dict[str, str] = field(default_factory=dict)
    queue_url: str = ""


@pytest.fixture
def moto_aws(lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAws]:
    from moto import mock_aws

    from tests.support.template import table_definitions

    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        client = boto3.client("dynamodb")
        world = MotoAws(
            dynamodb, client, boto3.client("dynamodbstreams"), boto3.client("sqs"), boto3.client("ssm")
        )
        for name, (kwargs, ttl) in table_definitions().items():
            client.create_table(**kwargs)
            if ttl:
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
                world.ttl_attributes[name] = ttl
        world.queue_url = world.sqs.create_queue(QueueName="PresenceTimerQueue")["QueueUrl"]
        monkeypatch.setenv("PRESENCE_QUEUE_URL", world.queue_url)
        world.ssm.put_parameter(Name="/parley/jwt-secret", Value=JWT_SECRET, Type="SecureString")
        yield world


def queue_bodies(world: MotoAws) -> list[dict[str, Any]]:
    msgs = world.sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


@pytest.fixture
def fanout_pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


@pytest.fixture
def parley(moto_aws: MotoAws, fanout_pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parley's handlers against moto, with the @connections API, timers and clock faked."""
    from parley import deps
    from tests.integration.harness import Harness

    harness = Harness(moto_aws, fanout_pool)
    monkeypatch.setattr(deps, "services", lambda: harness.services)
    return harness
