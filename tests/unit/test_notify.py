"""ManagementApiNotifier: post_to_connection outcomes and the capped, jittered retry on throttling."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from parley.notify import ManagementApiNotifier, PostOutcome

CONNECTION = "abc123="
FRAME = '{"type":"message","text":"héllo"}'


@pytest.fixture
def client() -> Any:
    # a real client on a closed loopback port: the Stubber answers, nothing is ever sent
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def expect_post(stubber: Stubber) -> None:
    stubber.add_response(
        "post_to_connection", {}, expected_params={"ConnectionId": CONNECTION, "Data": FRAME.encode()}
    )


def expect_error(stubber: Stubber, code: str, status: int) -> None:
    stubber.add_client_error(
        "post_to_connection",
        service_error_code=code,
        http_status_code=status,
        expected_params={"ConnectionId": CONNECTION, "Data": FRAME.encode()},
    )


def notifier(client: Any, sleeps: Sleeps, **kwargs: Any) -> ManagementApiNotifier:
    return ManagementApiNotifier(client, sleep=sleeps, **kwargs)


def test_a_successful_post_is_delivered_as_utf8_bytes(client, stubber):
    expect_post(stubber)
    sleeps = Sleeps()
    assert notifier(client, sleeps).post(CONNECTION, FRAME) is PostOutcome.DELIVERED
    assert sleeps.delays == []


def test_gone_is_reported_without_retrying(client, stubber):
    expect_error(stubber, "GoneException", 410)
    sleeps = Sleeps()
    assert notifier(client, sleeps).post(CONNECTION, FRAME) is PostOutcome.GONE
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "code", ["LimitExceededException", "TooManyRequestsException", "ThrottlingException"]
)
def test_throttling_is_retried_with_backoff_then_delivered(client, stubber, code):
    expect_error(stubber, code, 429)
    expect_error(stubber, code, 429)
    expect_post(stubber)
    sleeps = Sleeps()
    assert notifier(client, sleeps).post(CONNECTION, FRAME) is PostOutcome.DELIVERED
    assert len(sleeps.delays) == 2


def test_throttled_on_every_attempt_is_throttled_after_the_attempts(client, stubber):
    for _ in range(4):
        expect_error(stubber, "LimitExceededException", 429)
    sleeps = Sleeps()
    assert notifier(client, sleeps, attempts=4).post(CONNECTION, FRAME) is PostOutcome.THROTTLED
    assert len(sleeps.delays) == 3  # no pointless sleep after the last attempt


def test_the_default_policy_makes_five_attempts(client, stubber):
    for _ in range(5):
        expect_error(stubber, "LimitExceededException", 429)
    sleeps = Sleeps()
    assert notifier(client, sleeps).post(CONNECTION, FRAME) is PostOutcome.THROTTLED
    assert len(sleeps.delays) == 4


@pytest.mark.parametrize(
    ("code", "status"),
    [("ForbiddenException", 403), ("PayloadTooLargeException", 413), ("InternalServerError", 500)],
)
def test_other_errors_fail_at_once(client, stubber, code, status):
    expect_error(stubber, code, status)
    sleeps = Sleeps()
    assert notifier(client, sleeps).post(CONNECTION, FRAME) is PostOutcome.FAILED
    assert sleeps.delays == []


def test_a_throttle_then_gone_is_gone(client, stubber):
    expect_error(stubber, "LimitExceededException", 429)
    expect_error(stubber, "GoneException", 410)
    assert notifier(client, Sleeps()).post(CONNECTION, FRAME) is PostOutcome.GONE


class FlakyEndpoint:
    """A management endpoint whose first `failures` posts hit a transport error."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def post_to_connection(self, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error


TRANSIENT = [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:9"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
    ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_transient_connection_error_is_retried_so_the_batch_is_not_sent_again(error):
    # Given an endpoint that drops the first two attempts
    endpoint = FlakyEndpoint(2, error)
    sleeps = Sleeps()
    # When a frame is posted, Then it is delivered on the third attempt, after two backoffs
    outcome = ManagementApiNotifier(endpoint, sleep=sleeps).post(CONNECTION, FRAME)  # type: ignore[arg-type]
    assert outcome is PostOutcome.DELIVERED
    assert (endpoint.calls, len(sleeps.delays)) == (3, 2)


@pytest.mark.parametrize(
    ("error", "calls", "sleeps_taken"),
    [
        # a transport error on every attempt: each attempt is made, then the post fails
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), 5, 4),
        # any other SDK error (a bug, not the network): it fails at once
        (ParamValidationError(report="bad"), 1, 0),
    ],
    ids=["transport-every-attempt", "other-sdk-error"],
)
def test_a_post_that_cannot_succeed_fails(error, calls, sleeps_taken):
    endpoint = FlakyEndpoint(99, error)
    sleeps = Sleeps()
    outcome = ManagementApiNotifier(endpoint, sleep=sleeps).post(CONNECTION, FRAME)  # type: ignore[arg-type]
    assert outcome is PostOutcome.FAILED
    assert (endpoint.calls, len(sleeps.delays)) == (calls, sleeps_taken)


def test_the_worst_case_of_a_post_is_every_attempt_timing_out_after_the_capped_backoffs():
    notifier = ManagementApiNotifier(FlakyEndpoint(0, RuntimeError()), attempts=5)  # type: ignore[arg-type]
    assert notifier.worst_case_s(1.5) == pytest.approx(5 * 1.5 + 0.05 + 0.1 + 0.2 + 0.4)


def test_delays_are_full_jitter_below_the_capped_exponential(client, stubber):
    attempts, base, cap = 8, 0.1, 0.5
    for _ in range(attempts):
        expect_error(stubber, "LimitExceededException", 429)
    sleeps = Sleeps()
    notifier(client, sleeps, attempts=attempts, base_delay_s=base, max_delay_s=cap).post(CONNECTION, FRAME)
    assert len(sleeps.delays) == attempts - 1
    for n, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= min(cap, base * 2**n)


def test_the_upper_bound_doubles_until_the_cap(client, stubber, monkeypatch):
    # with the random draw pinned to its upper end, the delays are the bounds themselves
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    for _ in range(6):
        expect_error(stubber, "LimitExceededException", 429)
    sleeps = Sleeps()
    notifier(client, sleeps, attempts=6, base_delay_s=0.1, max_delay_s=0.5).post(CONNECTION, FRAME)
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_delays_are_jittered_not_fixed(client, stubber):
    runs = 20
    for _ in range(runs * 2):
        expect_error(stubber, "LimitExceededException", 429)
    sleeps = Sleeps()
    post = notifier(client, sleeps, attempts=2, base_delay_s=0.2, max_delay_s=1.0)
    for _ in range(runs):
        assert post.post(CONNECTION, FRAME) is PostOutcome.THROTTLED
    assert len(sleeps.delays) == runs
    assert all(0 <= d <= 0.2 for d in sleeps.delays)
    assert len(set(sleeps.delays)) > runs // 2


def test_close_deletes_the_connection(client, stubber):
    stubber.add_response("delete_connection", {}, expected_params={"ConnectionId": CONNECTION})
    notifier(client, Sleeps()).close(CONNECTION)


def test_closing_a_gone_connection_is_quiet(client, stubber):
    stubber.add_client_error("delete_connection", service_error_code="GoneException", http_status_code=410)
    notifier(client, Sleeps()).close(CONNECTION)


def test_closing_fails_loudly_on_other_errors(client, stubber):
    from botocore.exceptions import ClientError

    stubber.add_client_error(
        "delete_connection", service_error_code="ForbiddenException", http_status_code=403
    )
    with pytest.raises(ClientError):
        notifier(client, Sleeps()).close(CONNECTION)
