"""boto3 clients, built once per container and configured only by the environment (endpoint URLs)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_sqs import SQSClient

_RETRIES: Any = {"mode": "standard", "max_attempts": 3}


@cache
def dynamodb() -> DynamoDBServiceResource:
    return boto3.resource("dynamodb", config=Config(retries=_RETRIES, connect_timeout=2, read_timeout=5))


@cache
def dynamodb_client() -> DynamoDBClient:
    """Plain client: unlike `dynamodb().meta.client` it takes DynamoDB-typed values (as Powertools needs)."""
    return boto3.client("dynamodb", config=Config(retries=_RETRIES, connect_timeout=2, read_timeout=5))


@cache
def management_api(endpoint_url: str, pool_size: int) -> ApiGatewayManagementApiClient:
    # botocore pools 10 connections by default; fan-out posts concurrently, so match the pool to the workers.
    # LimitExceeded is retried by Parley itself (with jitter), so the SDK does not retry on top of it.
    config = Config(
        max_pool_connections=pool_size,
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=2,
        read_timeout=5,
    )
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=config)


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs", config=Config(retries=_RETRIES))
