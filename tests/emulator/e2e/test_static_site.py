"""End to end: `--static-dir` pages and the development token on the WebSocket port, beside WebSockets."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
from urllib.parse import urlsplit

import jwt
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from tests.emulator.e2e.test_gateway_cli import FIXTURE, start_cli
from ws_emulator.app import run_emulator
from ws_emulator.cli import main
from ws_emulator.config import Config
from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET

pytestmark = pytest.mark.asyncio(loop_scope="module")

INDEX = b"<!doctype html><title>client</title>"


@pytest.fixture(scope="module")
def web_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    root = base / "web"
    root.mkdir()
    (root / "index.html").write_bytes(INDEX)
    (root / "app.js").write_text("import './protocol.js';\n")
    (root / "styles.css").write_text("body { color: black; }\n")
    (base / "outside.txt").write_text("not for the browser")
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu(web_root):
    config = Config(
        template=FIXTURE,
        port=0,
        static_dir=web_root,
        dev_token_secret=DEV_TOKEN_SECRET,
        dev_token_claims={"workspace": "demo"},
        quiet=True,
    )
    async with run_emulator(config) as emulator:
        yield emulator


def _get(base_url: str, raw_path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """A GET with the path sent byte for byte (no client-side normalisation of `..`)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
    try:
        conn.request("GET", raw_path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


async def get(emu, raw_path, headers=None):
    return await asyncio.to_thread(_get, emu.page_url, raw_path, headers)


async def test_the_page_and_its_assets_are_served_with_their_types(emu):
    status, headers, body = await get(emu, "/")
    assert (status, body, headers["content-type"]) == (200, INDEX, "text/html; charset=utf-8")
    status, headers, _ = await get(emu, "/app.js")
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    status, headers, _ = await get(emu, "/styles.css?v=2")
    assert (status, headers["content-type"]) == (200, "text/css; charset=utf-8")


@pytest.mark.parametrize("raw_path", ["/../outside.txt", "/%2e%2e/outside.txt", "/nope.js", "/.hidden"])
async def test_paths_outside_the_folder_or_missing_are_404(emu, raw_path):
    status, _, body = await get(emu, raw_path)
    assert status == 404
    assert b"not for the browser" not in body


async def test_websocket_upgrades_still_work_on_root_and_stage(emu):
    root = emu.ws_url.rsplit("/", 1)[0]
    for url in (root + "/", emu.ws_url):
        async with connect(url + "?token=user:alice") as ws:
            await ws.send(json.dumps({"action": "echo", "data": "hi"}))
            assert json.loads(await ws.recv()) == {"echo": "hi", "from": "alice"}


async def test_the_page_gets_a_development_token_from_its_own_origin(emu):
    status, headers, body = await get(emu, "/_emulator/token?sub=alice&name=Alice")
    claims = jwt.decode(json.loads(body)["token"], DEV_TOKEN_SECRET, algorithms=["HS256"])
    assert (status, headers["content-type"]) == (200, "application/json")
    assert (claims["sub"], claims["name"], claims["workspace"]) == ("alice", "Alice", "demo")


async def test_static_requests_do_not_spend_the_connection_rate(web_root):
    config = Config(template=FIXTURE, port=0, static_dir=web_root, connect_rate=1, quiet=True)
    async with run_emulator(config) as emu:
        for _ in range(5):
            assert (await get(emu, "/"))[0] == 200
        async with connect(emu.ws_url + "?token=user:bob") as ws:
            await ws.send(json.dumps({"action": "echo", "data": "still"}))
            assert json.loads(await ws.recv())["echo"] == "still"


async def test_a_non_default_dev_token_secret_is_a_start_up_error(capsys):
    status = main(
        ["serve", "--template", str(FIXTURE), "--port", "0", "--dev-token-secret", "prod-secret-" * 4]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "--dev-token-secret" in err and "built-in development secret" in err


async def test_the_banner_prints_the_page_url(web_root):
    proc, banner = await start_cli(
        "--template", str(FIXTURE), "--port", "0", "--quiet", "--static-dir", str(web_root)
    )
    try:
        page = re.search(r"web page\s+(http://127\.0\.0\.1:\d+/)\s", banner)
        assert page is not None, banner
        status, _, body = await asyncio.to_thread(_get, page.group(1), "/")
        assert (status, body) == (200, INDEX)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 30)


async def test_without_static_dir_or_dev_tokens_plain_gets_reach_the_handshake_as_before():
    config = Config(template=FIXTURE, port=0, quiet=True)
    async with run_emulator(config) as emu:
        # No page and no token endpoint: `/` meets the authorizer (no token: 401), other paths are 403.
        assert (await get(emu, "/"))[0] == 401
        assert (await get(emu, "/_emulator/token?sub=alice"))[0] == 403
