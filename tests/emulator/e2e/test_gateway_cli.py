"""The `ws-emulator` command: banner, dev tokens, exit codes, signals, dead-letters."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path

import jwt
from websockets.asyncio.client import connect

from ws_emulator.app import EVENT_LOGGER
from ws_emulator.cli import configure_logging, line_buffered, main
from ws_emulator.config import Config
from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET
from ws_emulator.observe.lines import JsonEventFormatter

FIXTURE = Path(__file__).parents[1] / "fixtures" / "gateway_app" / "template.yaml"
SECRET = DEV_TOKEN_SECRET
ROOT = Path(__file__).parents[3]


async def start_cli(*args):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ws_emulator",
        "serve",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, f"emulator exited early: {(await proc.stderr.read()).decode()}"
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            return proc, "".join(lines)


async def test_serve_prints_urls_routes_and_dev_users_then_stops_cleanly_on_sigint():
    proc, banner = await start_cli(
        "--template",
        str(FIXTURE),
        "--port",
        "0",
        "--dev-token-secret",
        SECRET,
        "--dev-token-claims",
        '{"workspace": "demo"}',
        "--dev-users",
        "alice,bob",
    )
    try:
        ws_url = re.search(r"WebSocket\s+(ws://\S+)", banner).group(1)
        assert re.search(r"@connections\s+http://127\.0\.0\.1:\d+/test", banner)
        assert re.search(r"\$connect\s+-> ConnectFunction\s+\(authorizer AuthorizerFunction", banner)
        assert re.search(r"echo\s+-> EchoFunction\s+\(route response\)", banner)
        assert "ignored (no local effect): Permission (AWS::Lambda::Permission)" in banner
        assert re.search(r"IAM\s+enforced: each function's calls are checked .* \(6 of 6", banner)
        wscat = re.search(r"alice: wscat -c 'ws://127\.0\.0\.1:\d+/\?token=([^']+)'", banner)
        claims = jwt.decode(wscat.group(1), SECRET, algorithms=["HS256"])
        assert (claims["sub"], claims["workspace"]) == ("alice", "demo")
        assert "bob: wscat -c" in banner

        async with connect(ws_url + "?token=user:alice") as ws:
            await ws.send(json.dumps({"action": "echo", "data": "cli"}))
            assert json.loads(await ws.recv()) == {"echo": "cli", "from": "alice"}
            event_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            proc.send_signal(signal.SIGINT)
            await ws.wait_closed()
            assert ws.close_code == 1001
        assert re.match(r"\d\d:\d\d:\d\d\.\d{3} authorizer\s+\S+\s+AuthorizerFunction\s+Allow", event_line)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert "$disconnect" in out.decode() and "stopped" in out.decode()


async def test_sigterm_closes_connections_with_disconnect_and_exits_0():
    proc, banner = await start_cli("--template", str(FIXTURE), "--port", "0", "--quiet", "--no-iam")
    try:
        assert re.search(r"IAM\s+not enforced \(--no-iam\)", banner)
        ws_url = re.search(r"WebSocket\s+(ws://\S+)", banner).group(1)
        async with connect(ws_url + "?token=user:tess") as ws:
            proc.send_signal(signal.SIGTERM)
            await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1001, "Going away")
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out.decode().rstrip().endswith("stopped")
    # --quiet: after the banner, only the shutdown messages.
    assert "$connect" not in out.decode() and "$disconnect  " not in out.decode()


async def test_template_error_exits_2_with_one_paragraph(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(
        "Resources:\n"
        "  Api:\n    Type: AWS::ApiGatewayV2::Api\n"
        "    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}\n"
        "  Fn:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: missing-dir, Handler: app.handler, Runtime: python3.11}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ws_emulator",
        "serve",
        "--template",
        str(broken),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    message = err.decode()
    assert proc.returncode == 2
    assert "Traceback" not in message
    assert "Fn" in message and str(broken) in message
    assert message.strip().count("\n") == 0


def test_bad_option_exits_2(capsys, tmp_path):
    assert main(["serve", "--template", str(tmp_path / "nope.yaml")]) == 2
    assert "--template" in capsys.readouterr().err


def test_token_command_prints_a_verifiable_token(capsys):
    assert main(["token", "--secret", SECRET, "--sub", "alice", "--claims", '{"workspace": "demo"}']) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["workspace"]) == ("alice", "alice", "demo")


async def test_dead_letters_command_reads_a_running_emulator(capsys):
    from ws_emulator.app import run_emulator
    from ws_emulator.config import Config

    async with run_emulator(Config(template=FIXTURE, port=0)) as emu:
        status = await asyncio.to_thread(main, ["dead-letters", "--url", emu.management_url])
    assert status == 0
    assert "no dead letters" in capsys.readouterr().out
    assert main(["dead-letters", "--url", "http://127.0.0.1:9"]) == 1


async def test_log_format_json_writes_one_object_a_line_on_stdout_and_the_banner_on_stderr():
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ws_emulator",
        "serve",
        "--template",
        str(FIXTURE),
        "--port",
        "0",
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = ""
        while "Ctrl-C stops" not in banner:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "emulator exited early"
            banner += line
        ws_url = re.search(r"WebSocket\s+(ws://\S+)", banner).group(1)
        assert re.search(r"dashboard\s+http://127\.0\.0\.1:\d+/_emulator/", banner)
        async with connect(ws_url + "?token=user:json") as ws:
            await ws.send(json.dumps({"action": "echo", "data": "j"}))
            await ws.recv()
            lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)) for _ in range(3)]
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert [(d["type"], d["trigger"], d["source"]) for d in lines] == [
        ("invocation", "authorizer", "$connect"),
        ("invocation", "route", "$connect"),
        ("invocation", "route", "echo"),
    ]
    assert lines[2]["function"] == "EchoFunction" and lines[2]["status"] == "200"
    assert "user:json" not in json.dumps(lines)
    # Every stdout line, $disconnect's included, is JSON: the shutdown lines went to stderr.
    rest = [json.loads(line) for line in out.decode().splitlines()]
    assert [d["source"] for d in rest] == ["$disconnect"]


def test_log_format_must_be_text_or_json(capsys):
    assert main(["serve", "--template", str(FIXTURE), "--log-format", "yaml"]) == 2
    assert "--log-format: expected text or json" in capsys.readouterr().err


def test_quiet_silences_event_lines_in_both_formats():
    events = logging.getLogger(EVENT_LOGGER)
    saved = (events.level, list(events.handlers), events.propagate, logging.getLogger().handlers[:])
    try:
        for log_format in ("text", "json"):
            configure_logging(Config(template=FIXTURE, quiet=True, log_format=log_format))
            assert not events.isEnabledFor(logging.INFO)
            configure_logging(Config(template=FIXTURE, log_format=log_format))
            assert events.isEnabledFor(logging.INFO)
            assert isinstance(events.handlers[0].formatter, JsonEventFormatter) == (log_format == "json")
    finally:
        events.setLevel(saved[0])
        events.handlers[:] = saved[1]
        events.propagate = saved[2]
        logging.getLogger().handlers[:] = saved[3]


async def test_the_banner_reaches_a_log_file_at_once_when_stdout_is_redirected(tmp_path):
    # GIVEN stdout redirected to a file and no PYTHONUNBUFFERED (a plain `ws-emulator serve > log`)
    log = tmp_path / "emulator.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ws_emulator",
            "serve",
            "--template",
            str(FIXTURE),
            "--port",
            "0",
            "--no-watch",
            stdout=out,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
    try:
        # WHEN it has started (and is still running)
        text = ""
        for _ in range(600):
            text = log.read_text()
            if "Ctrl-C stops" in text or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        # THEN the whole banner is already in the file
        assert proc.returncode is None, (await proc.stderr.read()).decode()
        assert "ws-emulator serving" in text and "Ctrl-C stops" in text
        # AND lines written later, such as the shutdown notice, follow one at a time
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert log.read_text().rstrip().endswith("stopped")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_a_bad_env_vars_file_exits_2_naming_it(capsys, tmp_path):
    env_file = tmp_path / "env.json"
    env_file.write_text('{"EchoFunction": "not an object"}')
    assert main(["serve", "--template", str(FIXTURE), "--env-vars", str(env_file)]) == 2
    assert f"--env-vars {env_file}" in capsys.readouterr().err


def test_stdout_redirected_to_a_file_is_written_line_by_line(tmp_path):
    # GIVEN a text stream over a file, block-buffered as Python makes a redirected stdout
    with (tmp_path / "out.log").open("w", encoding="utf-8") as stream:
        assert not stream.line_buffering
        # WHEN the CLI sets it up, and a line is printed without flush
        line_buffered(stream)
        print("one line", file=stream)
        # THEN the line is in the file already
        assert (tmp_path / "out.log").read_text() == "one line\n"
