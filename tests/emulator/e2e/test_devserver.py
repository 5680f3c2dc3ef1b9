"""The emulator as a dev server: hot reload of code, layers and template, --warm, --env-vars."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ws_emulator.app import Emulator, run_emulator
from ws_emulator.config import Config

FIXTURE_DIR = Path(__file__).parents[1] / "fixtures" / "devserver"
WAIT_S = 15.0  # how long a change may take to be picked up on a loaded machine (not a speed check)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture app that a test may edit."""
    target = tmp_path / "app"
    shutil.copytree(FIXTURE_DIR, target)
    return target


@asynccontextmanager
async def serving(template: Path, **options: Any) -> AsyncIterator[Emulator]:
    async with run_emulator(Config(template=template, port=0, **options)) as emulator:
        yield emulator


async def echo(ws: ClientConnection) -> dict[str, Any]:
    await ws.send(json.dumps({"action": "echo"}))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return reply


async def until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Ask again until the reply satisfies `done` (a reload is picked up asynchronously)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        reply = await echo(ws)
        if done(reply) or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.1)


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


async def test_editing_a_handler_changes_the_next_reply_without_a_restart(project: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ws_emulator")
    async with serving(project / "template.yaml") as emu, connect(emu.ws_url) as ws:
        # GIVEN a connection that got an answer from the first version of the handler
        first = await echo(ws)
        assert first["version"] == "v1"
        # WHEN the handler file is edited while the emulator runs
        replace_in(project / "functions" / "echo" / "app.py", 'VERSION = "v1"', 'VERSION = "v2"')
        # THEN a later message on the same connection runs the new code in a fresh worker
        second = await until(ws, lambda reply: reply["version"] == "v2")
        assert second["version"] == "v2"
        assert second["pid"] != first["pid"]
        # AND one log line says which function was recycled
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reload: app.py")]
        assert lines and "EchoFunction" in lines[0]


async def test_a_layer_change_recycles_every_function_that_uses_it_lazily(project: Path) -> None:
    async with serving(project / "template.yaml") as emu, connect(emu.ws_url) as ws:
        first = await echo(ws)
        recorder = await emu.runtime.invoke("RecorderFunction", {"Records": []})
        assert first["layer"] == "layer-1" and recorder.ok
        stats = emu.runtime.pool_stats("RecorderFunction")
        # WHEN the shared layer changes
        replace_in(project / "layer" / "python" / "devshared" / "__init__.py", "layer-1", "layer-2")
        second = await until(ws, lambda reply: reply["layer"] == "layer-2")
        # THEN the function that was invoked again got a fresh worker with the new layer...
        assert second["layer"] == "layer-2"
        # ...while the other user of the layer started nothing yet: its next invoke is a cold start
        assert emu.runtime.pool_stats("RecorderFunction")["cold_starts"] == stats["cold_starts"]
        again = await emu.runtime.invoke("RecorderFunction", {"Records": []})
        assert again.ok and again.cold_start


async def test_a_template_change_reloads_functions_in_place_and_keeps_the_connection(project: Path) -> None:
    async with serving(project / "template.yaml") as emu, connect(emu.ws_url) as ws:
        assert (await echo(ws))["size"] == "small"
        # WHEN the template gives the function another environment value
        replace_in(project / "template.yaml", "SIZE: small", "SIZE: large")
        reply = await until(ws, lambda r: r["size"] == "large")
        # THEN the same open connection reaches the function with its new environment
        assert reply["size"] == "large"
        assert emu.template.functions["EchoFunction"].environment["SIZE"] == "large"


SHOUT_ROUTE = """
  ShoutRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref DevApi
      RouteKey: shout
      RouteResponseSelectionExpression: $default
      Target: !Sub integrations/${EchoIntegration}

  ShoutRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref DevApi
      RouteId: !Ref ShoutRoute
      RouteResponseKey: $default
"""


async def test_a_new_route_in_the_template_is_served_on_an_open_connection(project: Path) -> None:
    async with serving(project / "template.yaml") as emu, connect(emu.ws_url) as ws:
        # GIVEN an open connection, and no route "shout" yet (API Gateway answers Forbidden)
        await ws.send(json.dumps({"action": "shout"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["message"] == "Forbidden"
        # WHEN the template gains the route
        replace_in(project / "template.yaml", "\n  Stage:\n", SHOUT_ROUTE + "\n  Stage:\n")
        deadline = time.monotonic() + WAIT_S
        while "shout" not in emu.gateway.api.routes and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # THEN the same connection reaches the function through it
        await ws.send(json.dumps({"action": "shout"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["version"] == "v1"


async def test_a_table_change_in_the_template_says_a_restart_is_needed(project: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ws_emulator")
    async with serving(project / "template.yaml") as emu:
        replace_in(project / "template.yaml", "StreamViewType: NEW_IMAGE", "StreamViewType: KEYS_ONLY")
        deadline = time.monotonic() + WAIT_S
        warnings: list[str] = []
        while not warnings and time.monotonic() < deadline:
            warnings = [r.getMessage() for r in caplog.records if "restart the emulator" in r.getMessage()]
            await asyncio.sleep(0.1)
        assert warnings == ["reload: restart the emulator to apply changes to tables"]
        # the reloaded spec is known, the served one unchanged until a restart
        assert (
            emu.template.tables["RecordsTable"].create_args["StreamSpecification"]["StreamViewType"]
            == "KEYS_ONLY"
        )


async def test_a_template_that_no_longer_loads_keeps_the_previous_one(project: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ws_emulator")
    async with serving(project / "template.yaml") as emu, connect(emu.ws_url) as ws:
        replace_in(project / "template.yaml", "CodeUri: functions/echo", "CodeUri: [not, a, path]")
        deadline = time.monotonic() + WAIT_S
        errors: list[str] = []
        while not errors and time.monotonic() < deadline:
            errors = [r.getMessage() for r in caplog.records if "not taken" in r.getMessage()]
            await asyncio.sleep(0.1)
        assert errors, [r.getMessage() for r in caplog.records]
        assert (await echo(ws))["version"] == "v1"
        assert emu.template.functions["EchoFunction"].code_dir.name == "echo"


async def test_no_watch_keeps_the_code_that_was_loaded(project: Path) -> None:
    async with serving(project / "template.yaml", watch=False) as emu, connect(emu.ws_url) as ws:
        first = await echo(ws)
        assert emu.watcher is None
        replace_in(project / "functions" / "echo" / "app.py", 'VERSION = "v1"', 'VERSION = "v2"')
        # Nothing watches: the warm worker stays and answers with the code it imported.
        second = await echo(ws)
        assert (second["version"], second["pid"]) == ("v1", first["pid"])


async def test_warm_initialises_every_function_before_serving(project: Path) -> None:
    async with serving(project / "template.yaml", warm=True, watch=False) as emu:
        # GIVEN the emulator started with --warm: every function has an environment already
        for fid in emu.template.functions:
            assert emu.runtime.pool_stats(fid)["workers"] == 1
        # WHEN each function is invoked for the first time
        results = [await emu.runtime.invoke(fid, {"Records": []}) for fid in emu.template.functions]
        # THEN none of them reports a cold start
        assert all(r.ok for r in results), [r.error for r in results]
        assert [r.cold_start for r in results] == [False] * len(results)
        assert [r.init_ms for r in results] == [0.0] * len(results)


async def test_without_warm_the_first_invocation_is_a_cold_start(project: Path) -> None:
    async with serving(project / "template.yaml", watch=False) as emu:
        result = await emu.runtime.invoke("EchoFunction", {})
        assert result.ok and result.cold_start


async def test_env_vars_override_the_template_as_sam_local_does(project: Path) -> None:
    env_vars = {"Parameters": {"COLOUR": "green", "UNDECLARED": "x"}, "EchoFunction": {"SIZE": "huge"}}
    async with serving(project / "template.yaml", env_vars=env_vars, watch=False) as emu:
        async with connect(emu.ws_url) as ws:
            reply = await echo(ws)
        env = emu.runtime.environment("RecorderFunction")
    # The function's own object wins for SIZE, "Parameters" applies to every function...
    assert (reply["colour"], reply["size"]) == ("green", "huge")
    assert env["COLOUR"] == "green"
    # ...and a variable the template does not define is not added (sam local ignores it too)
    assert "UNDECLARED" not in env
    assert any("UNDECLARED" in note for note in emu.notes)


async def test_shutdown_drains_a_template_with_only_a_stream_mapping_at_once(project: Path, caplog) -> None:
    # A drain needs two quiet rounds in a row; with one shard and no queue the second round used to
    # look at the shard before it had polled again, start over, and give up after 10 s.
    caplog.set_level(logging.WARNING, logger="ws_emulator.sources")
    async with serving(project / "template.yaml", watch=False):
        pass
    assert not [r for r in caplog.records if "gave up" in r.getMessage()]


async def test_localstack_option_works_against_a_moto_server_standing_in_for_localstack(
    project: Path,
) -> None:
    # moto in server mode speaks the same edge-endpoint protocol: a licence-free `--localstack URL` target
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        async with serving(project / "template.yaml", aws_endpoint=url, watch=False) as emu:
            async with connect(emu.ws_url) as ws:
                reply = await echo(ws)
            table = emu.template.tables["RecordsTable"].name
            assert emu.aws.endpoint_url == url and not emu.aws.embedded
            assert emu.runtime.environment("EchoFunction")["AWS_ENDPOINT_URL"] == url
            tables = emu.aws.client("dynamodb").list_tables()["TableNames"]
        assert reply["version"] == "v1"
        assert table in tables
    finally:
        server.stop()
