"""The HTTP/1.1 codec (parsing, keep-alive rules) and the @connections error shape (pure)."""

import pytest

from tests.emulator.unit.doubles import NoConnections
from ws_emulator.gateway.http11 import BadRequest, HttpRequest, body_length, parse_head
from ws_emulator.gateway.management import aws_error


def test_request_line_and_headers_are_parsed_with_lower_case_names():
    method, target, version, headers = parse_head(
        b"POST /prod/@connections/abc%3D HTTP/1.1\r\nHost: x\r\nContent-Length: 3"
    )
    assert (method, target, version) == ("POST", "/prod/@connections/abc%3D", "HTTP/1.1")
    assert headers == {"host": "x", "content-length": "3"}


@pytest.mark.parametrize(
    "head",
    [
        b"GET /x\r\nHost: x",
        b"GET x HTTP/1.1\r\nHost: x",
        b"GET /x HTTP/2\r\nHost: x",
        b"GET /x HTTP/1.1\r\nHost x",
        b"GET /x HTTP/1.1\r\nHost : x",
        b"GET /x HTTP/1.1\r\nHost: x\r\n folded",
        b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
    ],
)
def test_malformed_heads_are_refused(head):
    with pytest.raises(BadRequest):
        parse_head(head)


def test_body_length_rules():
    assert body_length({}) == 0
    assert body_length({"content-length": "12"}) == 12
    with pytest.raises(BadRequest) as chunked:
        body_length({"transfer-encoding": "chunked"})
    assert chunked.value.status == 501
    with pytest.raises(BadRequest):
        body_length({"content-length": "-1"})
    with pytest.raises(BadRequest) as huge:
        body_length({"content-length": str(10**9)})
    assert huge.value.status == 413


def test_keep_alive_defaults_per_http_version():
    assert HttpRequest("GET", "/", (), "HTTP/1.1", {}).keep_alive
    assert not HttpRequest("GET", "/", (), "HTTP/1.1", {"connection": "close"}).keep_alive
    assert not HttpRequest("GET", "/", (), "HTTP/1.0", {}).keep_alive
    assert HttpRequest("GET", "/", (), "HTTP/1.0", {"connection": "keep-alive"}).keep_alive


def test_aws_errors_carry_the_error_type_header_and_a_message():
    response = aws_error(410, "GoneException", "gone")
    assert ("x-amzn-ErrorType", "GoneException") in response.headers
    assert response.body == b'{"message": "gone"}'
    wire = response.encode(keep_alive=True)
    assert wire.startswith(b"HTTP/1.1 410 Gone\r\n") and b"Content-Length: 19\r\n" in wire


def admin_api(token_minter=None):
    import logging

    from ws_emulator.gateway.management import ManagementApi

    return ManagementApi(
        NoConnections(), stage="dev", log=logging.getLogger("test"), token_minter=token_minter
    )


async def test_token_endpoint_mints_only_when_enabled():
    import json

    request = HttpRequest("GET", "/_emulator/token", (("sub", "alice"), ("name", "Alice")), "HTTP/1.1", {})
    assert (await admin_api().handle(request)).status == 404
    minted = await admin_api(lambda sub, name: f"{sub}/{name}").handle(request)
    assert (minted.status, json.loads(minted.body)) == (200, {"token": "alice/Alice"})
    no_sub = HttpRequest("GET", "/_emulator/token", (), "HTTP/1.1", {})
    assert (await admin_api(lambda sub, name: "t").handle(no_sub)).status == 400
