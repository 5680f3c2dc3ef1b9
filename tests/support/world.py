"""The one moto world: template.yaml's tables, the presence queue and the JWT secret, for any scope."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tests.support.template import table_definitions

# What Parley's settings read on Lambda; shared with bench/coldstart.py, which overrides the endpoints.
PARLEY_ENV = {
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
    **PARLEY_ENV,
}
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"


def isolate_process_env() -> None:
    """Only loopback: never let a test reach a real AWS endpoint, whatever the developer's shell has set."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE")):
            del os.environ[name]
    os.environ.update({k: v for k, v in TEST_ENV.items() if k.startswith(("AWS_", "POWERTOOLS_"))})


def clear_cached_clients() -> None:
    """Forget the settings, services and clients Parley builds once per container."""
    from parley import aws, config, deps

    clients = [value for value in vars(aws).values() if callable(value) and hasattr(value, "cache_clear")]
    for cached in (config.settings, deps.services, deps.verifier, *clients):
        if hasattr(cached, "cache_clear"):  # a test may have patched one with a plain function
            cached.cache_clear()


def set_lambda_env(mp: pytest.MonkeyPatch) -> dict[str, str]:
    """A function's environment as template.yaml gives it, undone with `mp`; caches start afresh."""
    for key, value in TEST_ENV.items():
        mp.setenv(key, value)
    clear_cached_clients()
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


@contextmanager
def moto_world(mp: pytest.MonkeyPatch) -> Iterator[MotoAws]:
    """Inside `mock_aws`: the tables template.yaml declares (TTL included), the presence timer queue
    (its URL set in the environment with `mp`) and the JWT secret in SSM."""
    from moto import mock_aws

    from ws_emulator.aws import moto_fixes

    # The emulator's fixes to moto: without them every transaction deep-copies whole tables, and a
    # test that fills a table (presence paging: 150 members) spends most of its time copying.
    moto_fixes.apply()
    with mock_aws():
        client = boto3.client("dynamodb")
        world = MotoAws(
            boto3.resource("dynamodb"),
            client,
            boto3.client("dynamodbstreams"),
            boto3.client("sqs"),
            boto3.client("ssm"),
        )
        for name, (kwargs, ttl) in table_definitions().items():
            client.create_table(**kwargs)
            if ttl:
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
                world.ttl_attributes[name] = ttl
        world.queue_url = world.sqs.create_queue(QueueName="PresenceTimerQueue")["QueueUrl"]
        mp.setenv("PRESENCE_QUEUE_URL", world.queue_url)
        world.ssm.put_parameter(Name=PARLEY_ENV["JWT_SECRET_PARAM"], Value=JWT_SECRET, Type="SecureString")
        yield world


def all_pages(call: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a paged DynamoDB Query or Scan (`table.query`, `client.scan`...), following
    LastEvaluatedKey. Tests read the whole world directly, not through Parley's store."""
    pages = [call(**kwargs)]
    while "LastEvaluatedKey" in pages[-1]:
        pages.append(call(**kwargs, ExclusiveStartKey=pages[-1]["LastEvaluatedKey"]))
    return [item for page in pages for item in page["Items"]]
