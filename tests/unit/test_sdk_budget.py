"""SDK timeouts and retries fit inside each function's Timeout: no call outlives its invocation."""

from __future__ import annotations

from typing import Any

import pytest

from parley import aws
from parley.notify import ManagementApiNotifier
from tests.support.template import read_template


@pytest.fixture(scope="module")
def timeouts() -> dict[str, int]:
    template = read_template()
    default = int(template["Globals"]["Function"]["Timeout"])
    return {
        name: int(res["Properties"].get("Timeout", default))
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def _post_worst_case_s() -> float:
    attempt = aws.MANAGEMENT_CONNECT_TIMEOUT_S + aws.MANAGEMENT_READ_TIMEOUT_S
    notifier: Any = ManagementApiNotifier(client=None)  # type: ignore[arg-type]
    return float(notifier.worst_case_s(attempt))


def test_one_dynamodb_or_sqs_call_takes_under_the_shortest_timeout(timeouts):
    # Given the data-plane clients' settings, When every attempt times out after the longest backoffs
    worst = aws.worst_case_s(aws.SDK_ATTEMPTS, aws.CONNECT_TIMEOUT_S, aws.READ_TIMEOUT_S)
    # Then one call still ends with time left in the shortest invocation
    assert worst < min(timeouts.values())


def test_closing_an_expired_connection_fits_a_route_functions_timeout(timeouts):
    # A route answers an expired token with one post and one close, each with its own worst case.
    close = aws.MANAGEMENT_CONNECT_TIMEOUT_S + aws.MANAGEMENT_READ_TIMEOUT_S
    assert _post_worst_case_s() + close < timeouts["JoinFunction"]


def test_a_post_that_times_out_every_attempt_leaves_the_fanout_most_of_its_timeout(timeouts):
    assert _post_worst_case_s() <= timeouts["FanoutFunction"] / 4


def test_the_botocore_defaults_would_not_fit():
    # the control: 60 s connect and read timeouts, standard mode's 3 attempts
    assert aws.worst_case_s(3, 60, 60) > 300
