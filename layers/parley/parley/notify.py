"""Pushing frames to connections through the API Gateway Management API (`@connections`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient


class PostOutcome(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # the connection no longer exists: clean it up, not a failure
    THROTTLED = "throttled"  # still throttled after every retry: a failure
    FAILED = "failed"


class Notifier(Protocol):
    def post(self, connection_id: str, data: str) -> PostOutcome: ...

    def close(self, connection_id: str) -> None: ...


# The connection to the endpoint failed or dropped: worth another attempt of this one post, rather than
# failing the post and with it the stream records it carries (Lambda would re-send the whole rest of
# the batch). A read timeout may follow a post that did arrive; events carry ids, clients drop repeats.
_TRANSIENT = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)
_THROTTLED = ("LimitExceededException", "TooManyRequestsException", "ThrottlingException")


class ManagementApiNotifier:
    """`post_to_connection` with Parley's retry policy: throttling and transient connection errors back
    off (capped, full jitter) and try again; Gone and every other error answer at once."""

    def __init__(
        self,
        client: ApiGatewayManagementApiClient,
        *,
        attempts: int = 5,
        base_delay_s: float = 0.05,
        max_delay_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._base = base_delay_s
        self._cap = max_delay_s
        self._sleep = sleep

    def post(self, connection_id: str, data: str) -> PostOutcome:
        payload = data.encode("utf-8")
        outcome = PostOutcome.THROTTLED
        for attempt in range(self._attempts):
            try:
                self._client.post_to_connection(ConnectionId=connection_id, Data=payload)
                return PostOutcome.DELIVERED
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "GoneException":
                    return PostOutcome.GONE
                if code not in _THROTTLED:
                    return PostOutcome.FAILED
                outcome = PostOutcome.THROTTLED
            except _TRANSIENT:
                outcome = PostOutcome.FAILED
            except BotoCoreError:
                return PostOutcome.FAILED
            if attempt + 1 < self._attempts:
                # "full jitter" spreads the retries of concurrent posts instead of synchronising them
                self._sleep(random.uniform(0, min(self._cap, self._base * 2**attempt)))  # noqa: S311
        return outcome

    def worst_case_s(self, attempt_s: float) -> float:
        """The longest one post can take when each attempt takes `attempt_s` (a timeout)."""
        sleeps = sum(min(self._cap, self._base * 2.0**i) for i in range(self._attempts - 1))
        return self._attempts * attempt_s + sleeps

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") != "GoneException":
                raise
