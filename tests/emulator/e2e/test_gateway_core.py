"""The gateway over loopback with real websockets clients and fake in-process functions."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time

import boto3
import pytest
from botocore.config import Config as BotoConfig
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.emulator.e2e.gateway_harness import (
    AUTHORIZER,
    FakeInvoker,
    allow,
    api_with,
    running_gateway,
)
from ws_emulator.faults import Faults
from ws_emulator.gateway.model import GatewaySettings, RouteDef


class Unauthorized(Exception):
    pass


def echo(event):
    return {
        "statusCode": 200,
        "body": json.dumps(
            {"echo": json.loads(event["body"]), "auth": event["requestContext"].get("authorizer")}
        ),
    }


def boom(event):
    raise RuntimeError("handler failed")


def token_authorizer(event):
    token = event["queryStringParameters"]["token"]
    if token == "bad":
        raise Unauthorized("Unauthorized")
    if token == "deny":
        return {
            **allow("x"),
            "policyDocument": {
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"}]
            },
        }
    if token == "crash":
        raise RuntimeError("authorizer bug")
    return allow(token, workspace="demo", level=3)


def connect_handler(event):
    query = event.get("queryStringParameters") or {}
    if "reject" in query:
        return {"statusCode": int(query["reject"])}
    if "crash" in query:
        raise RuntimeError("connect bug")
    return {"statusCode": 200}


ROUTES = {
    "$connect": RouteDef("$connect", "connect", AUTHORIZER),
    "$disconnect": RouteDef("$disconnect", "disconnect"),
    "echo": RouteDef("echo", "echo", has_route_response=True),
    "boom": RouteDef("boom", "boom", has_route_response=True),
    "silent": RouteDef("silent", "silent"),
}


def make_invoker(**extra):
    functions = {
        "auth": token_authorizer,
        "connect": connect_handler,
        "disconnect": lambda event: None,
        "echo": echo,
        "boom": boom,
        "silent": lambda event: {"statusCode": 200, "body": "not sent: no route response"},
        **extra,
    }
    return FakeInvoker(functions)


async def eventually(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def handshake_status(url):
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    return info.value.response.status_code


# ---- handshake ------------------------------------------------------------------------------------


async def test_missing_identity_source_is_401_without_invoking_the_authorizer():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        assert await handshake_status(gw.ws_url) == 401
    assert invoker.calls == []


@pytest.mark.parametrize(("token", "status"), [("bad", 401), ("deny", 403), ("crash", 500)])
async def test_authorizer_outcomes(token, status):
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        assert await handshake_status(f"{gw.ws_url}?token={token}") == status
    assert [fid for fid, _ in invoker.calls] == ["auth"]


@pytest.mark.parametrize(("query", "status"), [("reject=403", 403), ("reject=418", 418), ("crash=1", 500)])
async def test_connect_rejection_status(query, status):
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        assert await handshake_status(f"{gw.ws_url}?token=alice&{query}") == status
        assert gw.gateway.connections == {}
    assert invoker.events_for("disconnect") == []


async def test_wrong_stage_is_forbidden_and_root_path_is_accepted():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        root = gw.ws_url.rsplit("/", 1)[0]
        assert await handshake_status(f"{root}/other?token=alice") == 403
        async with connect(f"{root}/?token=alice") as ws:
            await ws.send(json.dumps({"action": "echo", "n": 1}))
            assert json.loads(await ws.recv())["echo"] == {"action": "echo", "n": 1}


async def test_new_connection_rate_limit_answers_429():
    invoker = make_invoker()
    async with (
        running_gateway(api_with(ROUTES), invoker, GatewaySettings(connect_rate=2)) as gw,
        connect(f"{gw.ws_url}?token=a"),
        connect(f"{gw.ws_url}?token=b"),
    ):
        assert await handshake_status(f"{gw.ws_url}?token=c") == 429


# ---- messages -------------------------------------------------------------------------------------


async def test_authorizer_output_reaches_every_event_of_the_connection():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send(json.dumps({"action": "echo"}))
        reply = json.loads(await ws.recv())
    await eventually(lambda: invoker.events_for("disconnect"))
    expected = {"principalId": "alice", "workspace": "demo", "level": "3"}
    assert {k: reply["auth"][k] for k in expected} == expected
    for fid in ("connect", "echo", "disconnect"):
        authorizer = invoker.events_for(fid)[0]["requestContext"]["authorizer"]
        assert authorizer["principalId"] == "alice"


async def test_unmatched_message_without_default_gets_forbidden_frame():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send("not json")
        frame = json.loads(await ws.recv())
        cid = next(iter(gw.gateway.connections))
    assert frame["message"] == "Forbidden"
    assert frame["connectionId"] == cid
    assert frame["requestId"]


async def test_default_route_takes_what_matches_nothing():
    invoker = make_invoker(default=lambda event: {"body": "default:" + event["body"]})
    routes = {**ROUTES, "$default": RouteDef("$default", "default", has_route_response=True)}
    async with running_gateway(api_with(routes), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send("plain text")
        assert await ws.recv() == "default:plain text"


async def test_failing_integration_gets_internal_server_error_frame():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send(json.dumps({"action": "boom"}))
        frame = json.loads(await ws.recv())
    assert frame["message"] == "Internal server error"
    assert set(frame) == {"message", "connectionId", "requestId"}


async def test_route_without_route_response_sends_nothing_back():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send(json.dumps({"action": "silent"}))
        await ws.send(json.dumps({"action": "echo", "after": True}))
        assert json.loads(await ws.recv())["echo"]["after"] is True


async def test_binary_frames_arrive_base64_encoded():
    seen: list[dict] = []
    invoker = make_invoker(default=seen.append)
    routes = {**ROUTES, "$default": RouteDef("$default", "default")}
    async with running_gateway(api_with(routes), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send(b"\x00\x01binary")
        await eventually(lambda: seen)
    assert seen[0]["isBase64Encoded"] is True
    assert base64.b64decode(seen[0]["body"]) == b"\x00\x01binary"


async def test_messages_of_one_connection_are_dispatched_in_order():
    order = []

    def slow_then_fast(event):
        n = json.loads(event["body"])["n"]
        time.sleep(0.05 if n == 0 else 0)
        order.append(n)

    invoker = make_invoker(seq=slow_then_fast)
    routes = {**ROUTES, "seq": RouteDef("seq", "seq")}
    async with running_gateway(api_with(routes), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        for n in range(5):
            await ws.send(json.dumps({"action": "seq", "n": n}))
        await eventually(lambda: len(order) == 5)
    assert order == [0, 1, 2, 3, 4]


# ---- limits and $disconnect ---------------------------------------------------------------------


async def test_frame_over_32_kb_closes_with_1009():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        async with connect(f"{gw.ws_url}?token=alice", max_size=None) as ws:
            await ws.send(json.dumps({"action": "echo", "pad": "x" * 33_000}))
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1009
        await eventually(lambda: invoker.events_for("disconnect"))
    context = invoker.events_for("disconnect")[0]["requestContext"]
    assert context["disconnectStatusCode"] == 1009
    assert invoker.events_for("echo") == []


async def test_message_over_128_kb_in_small_frames_closes_with_1009():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        async with connect(f"{gw.ws_url}?token=alice") as ws:
            await ws.send(["y" * 30_000 for _ in range(5)])
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1009


async def test_message_of_100_kb_in_32_kb_frames_is_accepted():
    invoker = make_invoker(default=lambda event: {"body": str(len(event["body"]))})
    routes = {**ROUTES, "$default": RouteDef("$default", "default", has_route_response=True)}
    async with running_gateway(api_with(routes), invoker) as gw, connect(f"{gw.ws_url}?token=alice") as ws:
        await ws.send(["z" * 25_000 for _ in range(4)])
        assert await ws.recv() == "100000"


async def test_idle_timeout_closes_with_1001_and_reports_it():
    invoker = make_invoker()
    settings = GatewaySettings(idle_timeout_s=0.3)
    async with running_gateway(api_with(ROUTES), invoker, settings) as gw:
        async with connect(f"{gw.ws_url}?token=alice") as ws:
            started = time.monotonic()
            await asyncio.sleep(0.2)
            await ws.send(json.dumps({"action": "silent"}))  # activity pushes the deadline back
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            elapsed = time.monotonic() - started
        await eventually(lambda: invoker.events_for("disconnect"))
    assert info.value.rcvd.code == 1001
    assert 0.45 < elapsed < 2
    context = invoker.events_for("disconnect")[0]["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")


async def test_max_connection_duration_closes_despite_activity():
    invoker = make_invoker()
    settings = GatewaySettings(idle_timeout_s=10, max_duration_s=0.3)
    async with running_gateway(api_with(ROUTES), invoker, settings) as gw:
        async with connect(f"{gw.ws_url}?token=alice") as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.send(json.dumps({"action": "silent"}))
                    await asyncio.sleep(0.05)
        assert info.value.rcvd.code == 1001


async def test_client_close_code_and_reason_reach_disconnect():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        async with connect(f"{gw.ws_url}?token=alice") as ws:
            await ws.close(4000, "see you")
        await eventually(lambda: invoker.events_for("disconnect"))
    context = invoker.events_for("disconnect")[0]["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "see you")


async def test_shutdown_closes_connections_and_delivers_disconnect():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        ws = await connect(f"{gw.ws_url}?token=alice")
        await gw.gateway.shutdown()
        assert invoker.events_for("disconnect")[0]["requestContext"]["disconnectStatusCode"] == 1001
        assert ws.close_code == 1001


async def test_shutdown_waits_for_disconnect_at_most_its_timeout(caplog):
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_disconnect(event):
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)

    invoker = make_invoker(disconnect=slow_disconnect)
    settings = GatewaySettings(shutdown_timeout_s=0.5)
    async with running_gateway(api_with(ROUTES), invoker, settings) as gw:
        sockets = [await connect(f"{gw.ws_url}?token=alice") for _ in range(3)]
        started = time.monotonic()
        await gw.gateway.shutdown()
        waited = time.monotonic() - started
        release.set()
        assert all(ws.close_code == 1001 for ws in sockets)
    assert 0.5 <= waited < 5  # it gave up on the stuck $disconnects instead of waiting for them
    assert len(invoker.events_for("disconnect")) == 3
    assert "3 $disconnect invocation(s) still running after 0.5 s (3 connection(s) were open)" in caplog.text


# ---- management API with boto3 ------------------------------------------------------------------


def management_client(url):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


async def test_management_post_get_delete_with_boto3():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        client = management_client(gw.management_url)
        async with connect(f"{gw.ws_url}?token=alice", user_agent_header="probe/1") as ws:
            cid = next(iter(gw.gateway.connections))
            await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b'{"hello": 1}')
            assert json.loads(await ws.recv()) == {"hello": 1}
            described = await asyncio.to_thread(client.get_connection, ConnectionId=cid)
            assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "probe/1"}
            assert described["ConnectedAt"] <= described["LastActiveAt"]
            await asyncio.to_thread(client.delete_connection, ConnectionId=cid)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        await eventually(lambda: invoker.events_for("disconnect"))
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"late")
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(client.get_connection, ConnectionId=cid)
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(client.delete_connection, ConnectionId=cid)


async def test_management_rejects_posts_over_128_kb():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        client = management_client(gw.management_url)
        async with connect(f"{gw.ws_url}?token=alice"):
            cid = next(iter(gw.gateway.connections))
            with pytest.raises(client.exceptions.PayloadTooLargeException):
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=cid, Data=b"x" * (128 * 1024 + 1)
                )


async def test_management_unknown_connection_is_gone():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        client = management_client(gw.management_url)
        with pytest.raises(client.exceptions.GoneException):
            await asyncio.to_thread(client.post_to_connection, ConnectionId="NoSuchConnect=", Data=b"x")


async def test_management_wrong_stage_is_forbidden():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        client = management_client(gw.management_url.replace("/test", "/prod"))
        with pytest.raises(client.exceptions.ForbiddenException):
            await asyncio.to_thread(client.post_to_connection, ConnectionId="x=", Data=b"x")


async def test_fault_injection_answers_410_and_429():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker, faults=Faults(post_gone_rate=1.0)) as gw:
        client = management_client(gw.management_url)
        async with connect(f"{gw.ws_url}?token=alice"):
            cid = next(iter(gw.gateway.connections))
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"x")
            gw.management.faults.configure({"postThrottleRate": 1.0})
            with pytest.raises(client.exceptions.LimitExceededException):
                await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"x")


# ---- the HTTP server itself ---------------------------------------------------------------------


async def raw_exchange(port, payload, *, expect_close=False):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536) if expect_close else reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return data


async def test_http_keep_alive_serves_pipelined_requests_in_order():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.management.port)
        host = f"Host: 127.0.0.1:{gw.management.port}".encode()
        writer.write(
            b"GET /_emulator/health HTTP/1.1\r\n" + host + b"\r\n\r\n"
            b"POST /test/@connections/nope%3D HTTP/1.1\r\n" + host + b"\r\nContent-Length: 2\r\n\r\nhi"
            b"GET /_emulator/nothing HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", data)
    assert statuses == [b"200", b"410", b"404"]


async def test_http_expect_continue_and_chunked_uploads():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        port = gw.management.port
        head = (
            f"POST /test/@connections/x%3D HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
            + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        )
        assert (await raw_exchange(port, head + b"x")).startswith(b"HTTP/1.1 100 Continue")
        chunked = (
            f"POST /test/@connections/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        assert (await raw_exchange(port, chunked, expect_close=True)).startswith(b"HTTP/1.1 501")
        assert (await raw_exchange(port, b"NONSENSE\r\n\r\n", expect_close=True)).startswith(b"HTTP/1.1 400")


async def test_admin_fault_endpoint_switches_faults_on_and_off():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        body = b'{"postGoneRate": 1.0}'
        host = f"Host: 127.0.0.1:{gw.management.port}\r\n".encode()
        put = (
            b"PUT /_emulator/faults HTTP/1.1\r\n" + host + b"Connection: close\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        assert b'"postGoneRate": 1.0' in await raw_exchange(gw.management.port, put, expect_close=True)
        assert gw.management.faults.post_gone_rate == 1.0
        delete = b"DELETE /_emulator/faults HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
        await raw_exchange(gw.management.port, delete, expect_close=True)
        assert gw.management.faults.pick() is None


async def test_connect_event_carries_handshake_headers_query_and_forwarding_headers():
    invoker = make_invoker()
    async with running_gateway(api_with(ROUTES), invoker) as gw:
        async with connect(f"{gw.ws_url}?token=alice&tag=a&tag=b", additional_headers={"X-Trace": "t1"}):
            pass
        event = invoker.events_for("connect")[0]
    assert event["headers"]["X-Trace"] == "t1"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
