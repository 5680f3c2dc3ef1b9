"""A moto-backed Parley world shared by a whole module, and a table snapshot, for long property runs.

The same steps as tests/conftest.py's lambda_env + moto_aws + parley fixtures, with a MonkeyPatch of
its own, so hypothesis can run hundreds of examples against one world without fixture resets.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

TABLES = ("StateTable", "MessagesTable", "IdempotencyTable")


def snapshot(dynamodb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of the three tables, in key order (a Scan is fine: the test looks at the whole world)."""
    world: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        table = dynamodb.Table(name)
        page = table.scan(ConsistentRead=True)
        items = list(page["Items"])
        while "LastEvaluatedKey" in page:
            page = table.scan(ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"])
            items.extend(page["Items"])
        world[name] = sorted(items, key=lambda i: (str(i.get("PK", i.get("id"))), str(i.get("SK", ""))))
    return world


@contextmanager
def shared_world() -> Iterator[Any]:
    from moto import mock_aws

    from parley import aws, config, deps
    from tests.conftest import JWT_SECRET, TEST_ENV, MotoAws
    from tests.integration.harness import Harness
    from tests.support.template import table_definitions

    caches = (config.settings, deps.services, deps.verifier, aws.dynamodb, aws.sqs, aws.management_api)
    with pytest.MonkeyPatch.context() as mp, mock_aws(), ThreadPoolExecutor(max_workers=8) as pool:
        for key, value in TEST_ENV.items():
            mp.setenv(key, value)
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
        world.ssm.put_parameter(Name="/parley/jwt-secret", Value=JWT_SECRET, Type="SecureString")
        for cached in caches:
            cached.cache_clear()
        harness = Harness(world, pool)
        mp.setattr(deps, "services", lambda: harness.services)
        try:
            yield harness
        finally:
            for cached in caches:
                cached.cache_clear()
