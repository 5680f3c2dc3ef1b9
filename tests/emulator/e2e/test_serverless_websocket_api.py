"""End to end: a template in the AWS::Serverless::WebSocketApi form, expanded by SAM's transform, served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ws_emulator.app import run_emulator
from ws_emulator.config import Config
from ws_emulator.errors import TemplateError
from ws_emulator.template.loader import load_template

FIXTURES = Path(__file__).parents[1] / "fixtures"
FIXTURE = FIXTURES / "wsapi_app" / "template.yaml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    async with run_emulator(Config(template=FIXTURE, port=0)) as emulator:
        yield emulator


async def test_the_stage_and_routes_come_from_the_sam_resource(emu):
    api = emu.gateway.api
    assert emu.ws_url.endswith("/live")
    assert sorted(api.routes) == ["$connect", "echo", "postback"]
    assert api.routes["$connect"].authorizer.function_id == "AuthorizerFunction"
    assert api.routes["echo"].has_route_response
    assert not api.routes["postback"].has_route_response


async def test_auth_runs_the_authorizer_on_connect(emu):
    with pytest.raises(InvalidStatus) as missing:
        async with connect(emu.ws_url):
            pass
    assert missing.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as denied:
        async with connect(emu.ws_url + "?token=deny"):
            pass
    assert denied.value.response.status_code == 403


async def test_a_route_response_declared_on_a_generated_route_sends_the_reply(emu):
    async with connect(emu.ws_url + "?token=user:alice") as ws:
        await ws.send(json.dumps({"action": "echo", "data": "hi"}))
        assert json.loads(await ws.recv()) == {"echo": "hi", "from": "alice"}


async def test_a_function_posts_through_connections_with_its_role(emu):
    async with connect(emu.ws_url + "?token=user:bob") as ws:
        await ws.send(json.dumps({"action": "postback", "data": [1]}))
        assert json.loads(await ws.recv()) == {"posted": [1]}


async def test_a_route_key_sam_refuses_is_reported_with_sams_reason(tmp_path):
    # SAM accepts only alphanumeric route keys besides $connect, $disconnect and $default.
    text = FIXTURE.read_text().replace("        postback:\n", "        post_back:\n")
    text = text.replace("../gateway_app", str(FIXTURES / "gateway_app"))
    template = tmp_path / "template.yaml"
    template.write_text(text)
    with pytest.raises(TemplateError) as info:
        load_template(template)
    assert "SAM transform failed" in str(info.value)
    assert "Route key 'post_back' must be alphanumeric" in str(info.value)
