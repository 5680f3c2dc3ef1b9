"""boto3 clients, built once per container and configured only by the environment (endpoint URLs)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from parley.notify import ConnectionsClient, SignedConnectionsClient

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient, DynamoDBServiceResource
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# One SDK call must fit the shortest function Timeout (10 s) with room for the rest of the invocation.
# Its worst case is attempts * (connect + read) plus the standard retry mode's backoff, which for
# throttling is up to 1 s, then 2 s... (`worst_case_s`; a unit test holds it to the template). The
# botocore defaults (60 s connect, 60 s read) would let one hung connection outlive any invocation.
SDK_ATTEMPTS = 2
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0
_RETRIES: Any = {"mode": "standard", "max_attempts": SDK_ATTEMPTS}
_DATA_PLANE = Config(retries=_RETRIES, connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S)
# @connections: Parley retries throttling itself (ManagementApiNotifier), one SDK attempt each; a post
# is a few milliseconds in-region, so a second without an answer is a failed attempt.
MANAGEMENT_CONNECT_TIMEOUT_S = 0.5
MANAGEMENT_READ_TIMEOUT_S = 1.0


def worst_case_s(attempts: int, connect_s: float, read_s: float, *, backoff_cap_s: float = 20.0) -> float:
    """The longest one call can take: every attempt times out, after the longest throttling backoff."""
    backoff = sum(min(2.0**i, backoff_cap_s) for i in range(attempts - 1))
    return attempts * (connect_s + read_s) + backoff


# A reconnect storm cold-starts many authorizers at once, each reading the secret, and GetParameter
# allows 40 TPS per account and region by default. Standard retries back a throttle off by
# rand(0, 1) * 2**i s: 4 attempts sleep at most 1 + 2 + 4 = 7 s, and 4 attempts that time out take at
# most 4 * 1.5 s, so either fits the authorizer's 10 s Timeout (checked by a test against template.yaml).
SSM_MAX_ATTEMPTS = 4
SSM_CONNECT_TIMEOUT_SECONDS = 0.5
SSM_READ_TIMEOUT_SECONDS = 1.0


@cache
def dynamodb() -> DynamoDBServiceResource:
    return boto3.resource("dynamodb", config=_DATA_PLANE)


@cache
def dynamodb_client() -> DynamoDBClient:
    """Plain client: unlike `dynamodb().meta.client` it takes DynamoDB-typed values (as Powertools needs)."""
    return boto3.client("dynamodb", config=_DATA_PLANE)


@cache
def management_api(endpoint_url: str, pool_size: int) -> ApiGatewayManagementApiClient:
    # botocore pools 10 connections by default; fan-out posts concurrently, so match the pool to the workers.
    # LimitExceeded is retried by Parley itself (with jitter), so the SDK does not retry on top of it.
    config = Config(
        max_pool_connections=pool_size,
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=MANAGEMENT_CONNECT_TIMEOUT_S,
        read_timeout=MANAGEMENT_READ_TIMEOUT_S,
    )
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=config)


@cache
def connections_client(endpoint_url: str, pool_size: int) -> ConnectionsClient:
    """The fast `@connections` client (signed by botocore, sent over `http.client`), else boto3's.

    boto3's client is kept where the fast path cannot sign or send like it: no credentials or region
    resolved from the environment, or an endpoint URL that is not a plain http(s) base URL.
    """
    session = boto3.session.Session()
    credentials = session.get_credentials()
    region = session.region_name
    if credentials is not None and region:
        try:
            return SignedConnectionsClient(
                endpoint_url,
                credentials=credentials,
                region=region,
                pool_size=pool_size,
                connect_timeout_s=MANAGEMENT_CONNECT_TIMEOUT_S,
                read_timeout_s=MANAGEMENT_READ_TIMEOUT_S,
            )
        except ValueError:
            pass
    return management_api(endpoint_url, pool_size)


@cache
def ssm() -> SSMClient:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": SSM_MAX_ATTEMPTS},
        connect_timeout=SSM_CONNECT_TIMEOUT_SECONDS,
        read_timeout=SSM_READ_TIMEOUT_SECONDS,
    )
    return boto3.client("ssm", config=config)


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs", config=_DATA_PLANE)


@cache
def events() -> Any:
    """EventBridge (domain events). No stubs are installed for it: parley.domain_events types the one
    call it makes (`put_events`) with a Protocol."""
    return boto3.client("events", config=_DATA_PLANE)
