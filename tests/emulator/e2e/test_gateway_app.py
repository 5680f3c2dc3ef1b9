"""End to end: the emulator serving a generic SAM WebSocket fixture, with real functions, moto and boto3."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config as BotoConfig
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ws_emulator.app import run_emulator
from ws_emulator.config import Config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gateway_app" / "template.yaml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    async with run_emulator(Config(template=FIXTURE, port=0)) as emulator:
        yield emulator


def table_item(emu, key):
    table = emu.template.tables["EventsTable"].name
    item = emu.aws.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": key}}).get("Item")
    return None if item is None else {k: json.loads(v["S"]) for k, v in item.items() if k not in ("pk", "at")}


async def recorded(emu, key, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = await asyncio.to_thread(table_item, emu, key)
        if item is not None:
            return item
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing recorded under {key}")


def management(emu):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=emu.management_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


async def status_of_handshake(url):
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    return info.value.response.status_code


async def connection_id(emu, ws):
    """The id the gateway gave this client (learned through a postback of our own)."""
    await ws.send(json.dumps({"action": "postback", "data": "whoami"}))
    assert json.loads(await ws.recv()) == {"posted": "whoami"}
    gateway = emu.gateway
    local = ws.local_address
    return next(cid for cid, conn in gateway.connections.items() if conn.ws.remote_address[1] == local[1])


# ---- handshake ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("?token=", 401),
        ("?token=garbage", 401),
        ("?token=deny", 403),
        ("?token=user:a&reject=403", 403),
    ],
)
async def test_handshake_refusals(emu, query, status):
    assert await status_of_handshake(emu.ws_url + query) == status


async def test_authorizer_context_reaches_connect_and_routes(emu):
    async with connect(emu.ws_url + "?token=user:alice") as ws:
        await ws.send(json.dumps({"action": "echo", "data": "hi"}))
        assert json.loads(await ws.recv()) == {"echo": "hi", "from": "alice"}
        cid = await connection_id(emu, ws)
    connect_record = await recorded(emu, f"connect#{cid}")
    authorizer = connect_record["authorizer"]
    assert (authorizer["principalId"], authorizer["name"], authorizer["admin"]) == ("alice", "alice", "false")
    assert connect_record["query"] == {"token": "user:alice"}


# ---- routes ---------------------------------------------------------------------------------------


async def test_postback_through_the_management_api_uses_the_rewritten_endpoint(emu):
    async with connect(emu.ws_url + "?token=user:bob") as ws:
        await ws.send(json.dumps({"action": "postback", "data": [1, 2]}))
        assert json.loads(await ws.recv()) == {"posted": [1, 2]}


async def test_a_route_response_over_128_kb_is_not_delivered_and_the_event_line_says_why(emu, caplog):
    caplog.set_level(logging.INFO, logger="ws_emulator.events")
    async with connect(emu.ws_url + "?token=user:erin", max_size=None) as ws:
        # Given a two-way route whose handler answers 130 KB
        await ws.send(json.dumps({"action": "echo", "data": "big", "pad": 130 * 1024}))
        # When the client sends another message on the same route
        await ws.send(json.dumps({"action": "echo", "data": "after"}))
        # Then the first frame it gets is the second reply: the oversized one never came
        assert json.loads(await ws.recv()) == {"echo": "after", "from": "erin"}
    lines = [r.getMessage() for r in caplog.records if r.name == "ws_emulator.events"]
    why = "route response not sent: 133162 bytes, over the 131072-byte message limit"
    assert any("EchoFunction" in line and why in line for line in lines), lines


async def test_failing_route_gets_internal_server_error_frame(emu):
    async with connect(emu.ws_url + "?token=user:carol") as ws:
        await ws.send(json.dumps({"action": "boom"}))
        frame = json.loads(await ws.recv())
    assert frame["message"] == "Internal server error"


async def test_unknown_route_without_default_gets_forbidden_frame(emu):
    async with connect(emu.ws_url + "?token=user:dave") as ws:
        await ws.send(json.dumps({"action": "nothing-here"}))
        frame = json.loads(await ws.recv())
    assert frame["message"] == "Forbidden"
    assert frame["connectionId"] and frame["requestId"]


async def test_oversized_frame_closes_with_1009_and_disconnect_reports_it(emu):
    async with connect(emu.ws_url + "?token=user:erin", max_size=None) as ws:
        cid = await connection_id(emu, ws)
        await ws.send(json.dumps({"action": "echo", "data": "x" * 40_000}))
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 1009
    record = await recorded(emu, f"disconnect#{cid}")
    assert record["status"] == 1009


async def test_client_close_reaches_disconnect_with_status_and_authorizer(emu):
    async with connect(emu.ws_url + "?token=user:frank") as ws:
        cid = await connection_id(emu, ws)
        await ws.close(4001, "leaving")
    record = await recorded(emu, f"disconnect#{cid}")
    assert (record["status"], record["reason"]) == (4001, "leaving")
    assert record["authorizer"]["principalId"] == "frank"


# ---- management API -------------------------------------------------------------------------------


async def test_management_api_with_boto3(emu):
    client = management(emu)
    async with connect(emu.ws_url + "?token=user:gina", user_agent_header="fixture-client") as ws:
        cid = await connection_id(emu, ws)
        await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"plain text")
        assert await ws.recv() == "plain text"
        info = await asyncio.to_thread(client.get_connection, ConnectionId=cid)
        assert info["Identity"]["UserAgent"] == "fixture-client"
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"x" * 140_000)
        await asyncio.to_thread(client.delete_connection, ConnectionId=cid)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    record = await recorded(emu, f"disconnect#{cid}")
    assert record["status"] == 1000
    with pytest.raises(client.exceptions.GoneException):
        await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"late")


async def test_admin_endpoints(emu):
    import urllib.request

    root = emu.admin_url

    def get(name):
        with urllib.request.urlopen(f"{root}/{name}", timeout=5) as response:
            return json.load(response)

    async with connect(emu.ws_url + "?token=user:hal"):
        health = await asyncio.to_thread(get, "health")
        listing = await asyncio.to_thread(get, "connections")
    assert health["status"] == "ok" and health["connections"] >= 1
    assert any(c["authorizer"]["principalId"] == "hal" for c in listing["connections"])
    assert (await asyncio.to_thread(get, "dead-letters")) == {"deadLetters": {}}


# ---- timeouts and shutdown (an emulator of their own) ---------------------------------------------


async def test_idle_timeout_then_graceful_shutdown_deliver_disconnect():
    config = Config(template=FIXTURE, port=0, idle_timeout_s=0.5)
    async with run_emulator(config) as own:
        # Warm the postback function first: on a busy machine its cold start (boto3) outlasts the
        # 0.5 s idle timeout, which would close the connection before `connection_id` gets its reply.
        await own.runtime.invoke(
            "PostbackFunction",
            {"body": json.dumps({"to": "nobody"}), "requestContext": {"connectionId": "x"}},
        )
        idle = await connect(own.ws_url + "?token=user:ivy")
        idle_id = await connection_id(own, idle)
        with pytest.raises(ConnectionClosed) as info:
            await idle.recv()
        assert info.value.rcvd.code == 1001
        assert (await recorded(own, f"disconnect#{idle_id}"))["status"] == 1001

        # A fresh connection, still open when the emulator shuts down.
        kept = await connect(own.ws_url + "?token=user:jack")
        kept_id = await connection_id(own, kept)
        await own.gateway.shutdown()
        assert kept.close_code == 1001
        record = await recorded(own, f"disconnect#{kept_id}")
        assert (record["status"], record["reason"]) == (1001, "Going away")
