"""The handshake's decisions, without a socket: paths, rate, client identity, authorizer and `$connect`."""

from dataclasses import dataclass
from typing import Any

import pytest

from ws_emulator.gateway import handshake
from ws_emulator.gateway.authorizer import AuthDecision
from ws_emulator.gateway.handshake import Rejection


@dataclass(frozen=True)
class Result:
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 1.0


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/", True), ("", True), ("/prod", True), ("/prod/", True), ("/other", False), ("/prod/x", False)],
)
def test_only_the_root_and_the_stage_are_the_api(path, allowed):
    # GIVEN a stage called prod
    # WHEN a handshake asks for a path
    # THEN only / and /prod are accepted
    assert handshake.path_matches(path, "prod") is allowed


def test_a_foreign_path_is_403_and_uses_no_rate_token():
    # GIVEN a rate with tokens to spare, counting what is taken
    taken: list[int] = []

    def take() -> bool:
        taken.append(1)
        return True

    # WHEN a handshake asks for a path outside the API
    rejection = handshake.early_rejection("/elsewhere", "prod", take)
    # THEN it is refused with 403 and no token was taken
    assert rejection == Rejection(403, "Forbidden") and taken == []


def test_over_the_connection_rate_is_429():
    # GIVEN a rate with no token left
    # WHEN a handshake on the API's path arrives
    rejection = handshake.early_rejection("/prod", "prod", lambda: False)
    # THEN it is refused with 429
    assert rejection == Rejection(429, "Too Many Requests")
    assert handshake.early_rejection("/", "prod", lambda: True) is None


def test_upgrade_header_tells_sockets_from_pages():
    # GIVEN Upgrade headers as clients send them
    # WHEN they are checked
    # THEN any value naming websocket (any case) is an upgrade, none is a page request
    assert handshake.is_upgrade(["WebSocket"]) and handshake.is_upgrade(["h2c, websocket"])
    assert not handshake.is_upgrade([]) and not handshake.is_upgrade(["h2c"])


def test_client_info_adds_forwarding_headers_unless_present_and_keeps_blank_query_values():
    # GIVEN a handshake from 10.0.0.7 with its own X-Forwarded-For and a blank query value
    headers = (("Host", "x"), ("x-forwarded-for", "1.2.3.4"), ("User-Agent", "ua"))
    # WHEN the client's identity is built
    client = handshake.client_info(
        connection_id="c=",
        now_ms=5,
        remote=("10.0.0.7", 555),
        user_agent="ua",
        headers=headers,
        query_string="token=&a=1",
        port=3001,
    )
    # THEN its headers gain the missing X-Forwarded-* only, and the query keeps the blank token
    assert client.source_ip == "10.0.0.7"
    assert ("x-forwarded-for", "1.2.3.4") in client.headers
    assert ("X-Forwarded-Port", "3001") in client.headers and ("X-Forwarded-Proto", "http") in client.headers
    assert not any(name == "X-Forwarded-For" for name, _ in client.headers)
    assert client.query == (("token", ""), ("a", "1"))


def test_client_without_a_remote_address_is_loopback():
    # GIVEN a socket that no longer knows its peer
    # WHEN the client's identity is built
    client = handshake.client_info(
        connection_id="c=", now_ms=5, remote=None, user_agent=None, headers=(), query_string="", port=1
    )
    # THEN the source is 127.0.0.1
    assert client.source_ip == "127.0.0.1" and client.query == ()


@pytest.mark.parametrize(
    ("status", "message"), [(401, "Unauthorized"), (403, "Forbidden"), (500, "Internal server error")]
)
def test_authorizer_refusals_carry_api_gateways_message(status, message):
    # GIVEN an authorizer decision that refuses
    # WHEN it becomes the handshake's answer
    # THEN the status is kept with API Gateway's message
    assert handshake.authorizer_rejection(AuthDecision(status)) == Rejection(status, message)


def test_an_allowing_authorizer_refuses_nothing():
    # GIVEN an Allow
    # WHEN it becomes the handshake's answer
    # THEN the handshake goes on
    assert handshake.authorizer_rejection(AuthDecision(0, principal_id="alice")) is None


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (Result(True, {"statusCode": 200}), None),
        (Result(True, None), None),  # no statusCode counts as 200
        (Result(True, {"statusCode": 204}), None),
        (Result(True, {"statusCode": 403}), Rejection(403, "Forbidden")),
        (Result(True, {"statusCode": 418, "body": "no tea"}), Rejection(418, "no tea")),
        (Result(True, {"statusCode": 418}), Rejection(418, "I'm a Teapot")),
        (Result(True, {"statusCode": "oops"}), Rejection(500, "Internal server error")),
        (Result(False, error={"errorType": "Boom"}), Rejection(500, "Internal server error")),
    ],
)
def test_connect_answers_decide_the_handshake(result, expected):
    # GIVEN what $connect's integration returned
    # WHEN it decides the handshake
    # THEN 2xx lets the client in, anything else refuses with that status
    assert handshake.connect_rejection(result) == expected


def test_rejection_body_is_a_message_object():
    # GIVEN a refusal
    # WHEN its body is written
    # THEN it is {"message": ...}
    assert Rejection(401, "Unauthorized").body == {"message": "Unauthorized"}
