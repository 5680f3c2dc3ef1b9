"""The live dashboard end to end: its page, its same-origin socket, the feed, closing, event lines."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from ws_emulator.app import EVENT_LOGGER, run_emulator
from ws_emulator.config import Config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gateway_app" / "template.yaml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    async with run_emulator(Config(template=FIXTURE, port=0)) as emulator:
        yield emulator


def origin(emu) -> Origin:
    return Origin(emu.page_url.rstrip("/"))


def live_url(emu) -> str:
    return emu.page_url.replace("http://", "ws://") + "_emulator/live"


async def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    def fetch() -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url)
        opener = urllib.request.build_opener(NoRedirect())
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    return await asyncio.to_thread(fetch)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


async def next_of(ws: ClientConnection, wanted, timeout: float = 10.0) -> dict[str, Any]:
    """The next message the predicate accepts (others are skipped)."""

    async def read() -> dict[str, Any]:
        while True:
            message = json.loads(await ws.recv())
            if wanted(message):
                return message

    return await asyncio.wait_for(read(), timeout)


async def test_the_page_and_its_assets_are_served_on_the_websocket_port(emu):
    status, headers, body = await http_get(emu.dashboard_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"ws-emulator" in body and b'src="dashboard.js"' in body
    status, headers, _ = await http_get(emu.dashboard_url + "dashboard.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, headers, _ = await http_get(emu.dashboard_url.rstrip("/"))
    assert status == 308 and headers["Location"] == "/_emulator/"
    assert (await http_get(emu.dashboard_url + "../app.py"))[0] == 404


@pytest.mark.parametrize("foreign", [None, "https://evil.example", "http://127.0.0.1:1"])
async def test_the_live_socket_refuses_every_origin_but_the_emulators_own(emu, foreign):
    headers = {} if foreign is None else {"Origin": foreign}
    with pytest.raises(InvalidStatus) as info:
        async with connect(live_url(emu), additional_headers=headers, origin=None):
            pass
    assert info.value.response.status_code == 403


async def test_a_connection_and_its_invocations_appear_live_and_close_from_the_dashboard(emu):
    # GIVEN the dashboard's socket, opened from the emulator's own origin
    async with connect(live_url(emu), origin=origin(emu)) as live:
        hello = await next_of(live, lambda m: m["type"] == "hello")
        assert hello["apiPath"] == "/test" and hello["tokenQuery"] == "token" and hello["devTokens"] is False
        # WHEN a client connects and sends a frame
        async with connect(emu.ws_url + "?token=user:dash") as client:
            await client.send(json.dumps({"action": "echo", "data": "hi"}))
            await client.recv()
            # THEN the authorizer, $connect and the route appear as invocations, with the connection id
            seen: dict[str, dict[str, Any]] = {}
            while "echo" not in seen:
                record = (await next_of(live, lambda m: m["type"] == "invocation"))["record"]
                seen[record["source"] if record["trigger"] == "route" else record["trigger"]] = record
            assert seen["authorizer"]["status"] == "Allow"
            assert seen["$connect"]["status"] == "200"
            cid = seen["echo"]["connection_id"]
            assert cid and seen["$connect"]["connection_id"] == cid
            # AND the connection is listed with its identity and frame counts
            row = await next_of(
                live,
                lambda m: (
                    m["type"] == "state"
                    and any(c["connectionId"] == cid and c["framesIn"] == 1 for c in m["connections"])
                ),
            )
            (listed,) = [c for c in row["connections"] if c["connectionId"] == cid]
            assert listed["principalId"] == "dash" and listed["context"]["name"] == "dash"
            assert listed["framesOut"] == 1
            # AND the authorizer's event is shown without its token
            await live.send(json.dumps({"op": "detail", "seq": seen["authorizer"]["seq"]}))
            detail = (await next_of(live, lambda m: m["type"] == "detail"))["record"]
            assert json.loads(detail["event"])["queryStringParameters"]["token"] == "***"
            assert "user:dash" not in detail["event"]
            # WHEN the dashboard closes the connection
            await live.send(json.dumps({"op": "close", "connectionId": cid}))
            assert (await next_of(live, lambda m: m["type"] in ("closing", "error")))["type"] == "closing"
            # THEN the client's socket is closed as DELETE @connections closes it
            await asyncio.wait_for(client.wait_closed(), 10)
            assert client.close_code == 1000
        disconnect = await next_of(
            live, lambda m: m["type"] == "invocation" and m["record"]["source"] == "$disconnect"
        )
        assert disconnect["record"]["connection_id"] == cid


async def test_bad_commands_and_unknown_connections_get_an_error(emu):
    async with connect(live_url(emu), origin=origin(emu)) as live:
        await live.send("not json")
        assert "not JSON" in (await next_of(live, lambda m: m["type"] == "error"))["message"]
        await live.send(json.dumps({"op": "close", "connectionId": "nope="}))
        assert "not open" in (await next_of(live, lambda m: m["type"] == "error"))["message"]


async def test_every_invocation_writes_one_event_line(emu, caplog):
    with caplog.at_level(logging.INFO, EVENT_LOGGER):
        async with connect(emu.ws_url + "?token=user:lines") as client:
            await client.send(json.dumps({"action": "echo", "data": "x"}))
            await client.recv()
            (connection_id,) = emu.gateway.connections
        # $disconnect runs after the close: wait for its line (a bounded wait, not a timing assertion).
        for _ in range(200):
            if any("$disconnect" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    # This connection's lines only: other emulators of the test process (the e2e suites') log to the
    # same logger, and their stream and queue invocations may land meanwhile.
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == EVENT_LOGGER
        and json.loads(getattr(r, "invocation", "{}")).get("connection_id") == connection_id
    ]
    assert [line.split()[0] for line in lines] == ["authorizer", "$connect", "echo", "$disconnect"]
    assert "AuthorizerFunction" in lines[0] and " Allow " in lines[0]
    assert "EchoFunction" in lines[2] and " 200 " in lines[2]
