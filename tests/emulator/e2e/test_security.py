"""End to end: the emulator refuses what a web page on another site (or a rebinding DNS name) could make
the developer's browser send it, on the WebSocket port, the management port and the embedded AWS endpoint,
while SDK and CLI clients (no Origin, a loopback Host) keep working."""

from __future__ import annotations

import asyncio
import http.client
import json
from urllib.parse import urlsplit

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config as BotoConfig
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.emulator.e2e.test_gateway_cli import FIXTURE, start_cli
from ws_emulator.app import run_emulator
from ws_emulator.cli import main
from ws_emulator.config import Config
from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVIL = "http://evil.example"
SECRET_NAME = "/app/jwt-secret"
SECRET_VALUE = "s3cr3t-value-for-the-test"


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_bytes(b"<!doctype html><title>client</title>")
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu(web_root):
    config = Config(
        template=FIXTURE,
        port=0,
        static_dir=web_root,
        dev_token_secret=DEV_TOKEN_SECRET,
        dev_token_claims={"workspace": "demo"},
        ssm_parameters={SECRET_NAME: SECRET_VALUE},
        quiet=True,
    )
    async with run_emulator(config) as emulator:
        yield emulator


def ws_port(emu) -> int:
    return int(urlsplit(emu.ws_url).port or 0)


def mg_port(emu) -> int:
    return int(urlsplit(emu.management_url).port or 0)


def _request(port, method, path, headers, body=b""):
    """One request with exactly these headers (Host included: http.client adds none of its own)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


async def request(port, method, path, headers=None, body=b"", *, host=None):
    all_headers = {"Host": host or f"127.0.0.1:{port}", **(headers or {})}
    return await asyncio.to_thread(_request, port, method, path, all_headers, body)


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


# ---- WebSocket handshakes: Origin -------------------------------------------------------------------


async def test_a_handshake_from_a_foreign_page_is_refused_with_403(emu):
    # Given a page on another site that opens a WebSocket to the emulator (the browser adds Origin)
    # When it connects with a valid development token
    with pytest.raises(InvalidStatus) as refused:
        async with connect(emu.ws_url + "?token=user:alice", origin=Origin(EVIL)):
            pass
    # Then the handshake is refused before any function runs
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body) == {"message": "Forbidden"}


@pytest.mark.parametrize("origin", ["http://evil.example:{port}", "null", "http://127.0.0.1:1"])
async def test_look_alike_origins_are_refused_too(emu, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(emu.ws_url + "?token=user:alice", origin=Origin(origin.format(port=ws_port(emu)))):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "origin", [None, "http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}"]
)
async def test_cli_clients_and_the_emulators_own_pages_connect(emu, origin):
    # Given no Origin (wscat, Python websockets) or the origin of the emulator's own page
    given = Origin(origin.format(port=ws_port(emu))) if origin else None
    # When it connects, then it is let in and served
    async with connect(emu.ws_url + "?token=user:alice", origin=given) as ws:
        await ws.send(json.dumps({"action": "echo", "data": "hi"}))
        assert json.loads(await ws.recv()) == {"echo": "hi", "from": "alice"}


async def test_allow_origin_adds_an_origin_for_handshakes_only():
    config = Config(template=FIXTURE, port=0, quiet=True, allowed_origins=("http://localhost:5173/",))
    async with run_emulator(config) as emu:
        # Given --allow-origin http://localhost:5173 (a dev server of the developer's own)
        async with connect(emu.ws_url + "?token=user:bob", origin=Origin("http://localhost:5173")) as ws:
            await ws.send(json.dumps({"action": "echo", "data": "vite"}))
            assert json.loads(await ws.recv())["echo"] == "vite"
        # Then other origins are still refused, and the admin endpoints do not open to it
        with pytest.raises(InvalidStatus):
            async with connect(emu.ws_url + "?token=user:bob", origin=Origin("http://localhost:5174")):
                pass
        status, _, _ = await request(
            mg_port(emu), "GET", "/_emulator/connections", {"Origin": "http://localhost:5173"}
        )
        assert status == 403


async def test_a_bad_allow_origin_is_a_start_up_error(capsys):
    status = main(["serve", "--template", str(FIXTURE), "--port", "0", "--allow-origin", "http://x/path"])
    assert status == 2
    assert "--allow-origin" in capsys.readouterr().err


# ---- Host (DNS rebinding), both ports -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.evil.example:{port}", "127.0.0.1:1"])
async def test_a_foreign_host_gets_421_on_the_websocket_port_for_pages_tokens_and_handshakes(emu, host):
    port = ws_port(emu)
    # Given a rebinding name (or the wrong port) in Host
    given = host.format(port=port)
    # When a page, the token endpoint and a handshake are asked for, then each is 421
    for path, headers in (("/", {}), ("/_emulator/token?sub=alice", {}), ("/test?token=user:alice", UPGRADE)):
        status, _, body = await request(port, "GET", path, headers, host=given)
        assert status == 421, path
        assert b"token" not in body


@pytest.mark.parametrize("host", ["evil.example:{port}", "localhost.evil.example:{port}"])
async def test_a_foreign_host_gets_421_on_the_management_port(emu, host):
    port = mg_port(emu)
    given = host.format(port=port)
    for method, path in (("GET", "/_emulator/connections"), ("GET", "/test/@connections/abc=")):
        status, _, _ = await request(port, method, path, host=given)
        assert status == 421, path


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "app.localhost:{port}"]
)
async def test_loopback_hosts_are_served_on_both_ports(emu, host):
    status, _, _ = await request(ws_port(emu), "GET", "/", host=host.format(port=ws_port(emu)))
    assert status == 200
    status, _, _ = await request(
        mg_port(emu), "GET", "/_emulator/health", host=host.format(port=mg_port(emu))
    )
    assert status == 200


# ---- admin endpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/_emulator/connections", "/_emulator/token?sub=alice", "/_emulator/dead-letters"]
)
async def test_admin_endpoints_refuse_foreign_pages(emu, path):
    status, _, body = await request(mg_port(emu), "GET", path, {"Origin": EVIL})
    assert status == 403
    assert b"token" not in body


async def test_the_token_endpoint_of_the_websocket_port_refuses_foreign_pages(emu):
    status, _, body = await request(ws_port(emu), "GET", "/_emulator/token?sub=alice", {"Origin": EVIL})
    assert (status, b"token" in body) == (403, False)
    # ... and still serves the emulator's own page (and Origin-less fetches)
    own = {"Origin": f"http://localhost:{ws_port(emu)}"}
    assert (await request(ws_port(emu), "GET", "/_emulator/token?sub=alice", own))[0] == 200
    assert (await request(ws_port(emu), "GET", "/_emulator/token?sub=alice"))[0] == 200


async def test_a_text_plain_post_cannot_switch_fault_injection_on(emu):
    # Given the no-preflight request a foreign page can send: text/plain, and no Origin it can hide
    body = b'{"postGoneRate": 1.0}'
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "text/plain", "Origin": EVIL}):
        status, _, _ = await request(mg_port(emu), "POST", "/_emulator/faults", headers, body)
        # Then it is refused and nothing changed
        assert status in (403, 415)
    assert emu.management.faults.post_gone_rate == 0.0
    status, _, _ = await request(
        mg_port(emu), "PUT", "/_emulator/faults", {"Content-Type": "application/x-www-form-urlencoded"}, body
    )
    assert status == 415
    assert emu.management.faults.post_gone_rate == 0.0


async def test_json_writes_from_tools_and_the_emulators_own_page_are_accepted(emu):
    body = b'{"postThrottleRate": 0.5}'
    for extra in ({}, {"Origin": f"http://127.0.0.1:{ws_port(emu)}"}):
        headers = {"Content-Type": "application/json; charset=utf-8", **extra}
        status, _, answer = await request(mg_port(emu), "PUT", "/_emulator/faults", headers, body)
        assert (status, json.loads(answer)["postThrottleRate"]) == (200, 0.5)
        # A bodiless DELETE needs no content type
        assert (await request(mg_port(emu), "DELETE", "/_emulator/faults", extra))[0] == 200
    assert emu.management.faults.post_throttle_rate == 0.0


# ---- @connections --------------------------------------------------------------------------------------


async def test_connections_api_refuses_browser_requests_and_serves_boto3(emu):
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=emu.management_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    async with connect(emu.ws_url + "?token=user:carol") as ws:
        cid = next(iter(emu.gateway.connections))
        path = f"/test/@connections/{cid}"
        # Given a page's POST (a simple request: no preflight) and a preflight for anything else
        status, _, _ = await request(
            mg_port(emu), "POST", path, {"Origin": EVIL, "Content-Type": "text/plain"}, b"injected"
        )
        assert status == 403
        status, headers, _ = await request(
            mg_port(emu), "OPTIONS", path, {"Origin": EVIL, "Access-Control-Request-Method": "DELETE"}
        )
        assert status == 403
        assert "access-control-allow-origin" not in headers
        # Then nothing reached the client, while boto3 (no Origin) still posts
        await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"from boto3")
        assert await asyncio.wait_for(ws.recv(), 5) == "from boto3"


# ---- the embedded AWS endpoint ---------------------------------------------------------------------------


async def test_the_embedded_aws_endpoint_grants_no_cors_and_refuses_pages_while_boto3_works(emu):
    aws_port = int(urlsplit(emu.aws.endpoint_url).port or 0)
    target = {"X-Amz-Target": "AmazonSSM.GetParameter", "Content-Type": "application/x-amz-json-1.1"}
    body = json.dumps({"Name": SECRET_NAME, "WithDecryption": True}).encode()
    # Given a page's preflight for an SSM call, and the call itself from that page
    status, headers, _ = await request(
        aws_port,
        "OPTIONS",
        "/",
        {
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-amz-target",
        },
    )
    assert status == 403
    assert not any(name.startswith("access-control-") for name in headers)
    status, headers, answer = await request(aws_port, "POST", "/", {"Origin": EVIL, **target}, body)
    assert status == 403
    assert SECRET_VALUE.encode() not in answer
    assert not any(name.startswith("access-control-") for name in headers)
    # ... or through a rebinding name
    status, _, answer = await request(aws_port, "POST", "/", target, body, host=f"evil.example:{aws_port}")
    assert (status, SECRET_VALUE.encode() in answer) == (421, False)
    # Then boto3 (no Origin, loopback Host) still reads it
    ssm = emu.aws.client("ssm")
    parameter = await asyncio.to_thread(ssm.get_parameter, Name=SECRET_NAME, WithDecryption=True)
    assert parameter["Parameter"]["Value"] == SECRET_VALUE


# ---- the static site's headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/missing.js", "/_emulator/token?sub=alice"])
async def test_the_static_site_sends_its_csp_with_frame_ancestors_none_and_nosniff(emu, path):
    status, headers, _ = await request(ws_port(emu), "GET", path)
    assert status in (200, 404)
    directives = [d.strip() for d in headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in directives
    assert "default-src 'self'" in directives
    assert headers["x-content-type-options"] == "nosniff"


# ---- binding beyond loopback -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
async def test_a_non_loopback_host_without_allow_remote_is_a_start_up_error(capsys, host):
    status = main(["serve", "--template", str(FIXTURE), "--port", "0", "--host", host])
    err = capsys.readouterr().err
    assert status == 2
    assert "--allow-remote" in err and "not a loopback address" in err


async def test_allow_remote_binds_and_warns_that_admin_and_token_endpoints_are_reachable():
    proc, banner = await start_cli(
        "--template",
        str(FIXTURE),
        "--host",
        "0.0.0.0",
        "--allow-remote",
        "--port",
        "0",
        "--quiet",
        "--dev-token-secret",
        DEV_TOKEN_SECRET,
    )
    try:
        assert "WebSocket     ws://0.0.0.0:" in banner
        warning = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
        assert warning.startswith("WARNING: listening on 0.0.0.0 (--allow-remote)")
        assert "/_emulator/*" in warning and "development token endpoint" in warning
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)
