"""The ws-emulator distribution (emulator/): its wheel's contents and metadata, and the wheel installed
into a fresh virtualenv serving a fixture template through its own `ws-emulator` command.

The build and the install use pip's ordinary index and cache (the install pinned to
requirements-dev.txt's versions, so a warm cache serves every file); PIP_NO_INDEX=1 and
PIP_FIND_LINKS=DIR make both offline, as pip reads its options from the environment.
"""

from __future__ import annotations

import asyncio
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).parents[2]
EMULATOR = ROOT / "emulator"
QUICKSTART = ROOT / "tests" / "emulator" / "fixtures" / "quickstart"


def _clean_env() -> dict[str, str]:
    """This environment without anything that would let the repository's own code be imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools builds in the source folder, and a build/ left there from an
    # earlier build would carry files since deleted into the wheel.
    source = tmp_path_factory.mktemp("source") / "emulator"
    shutil.copytree(EMULATOR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, source, cwd=out)
    (built,) = out.glob("ws_emulator-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv (no system site-packages) holding the wheel and its dependencies only."""
    where = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", where / "env", cwd=where)
    python = where / "env" / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-compile",
        "--constraint",
        ROOT / "requirements-dev.txt",
        wheel,
        cwd=where,
    )
    yield where / "env"


def test_wheel_holds_the_emulator_its_dashboard_and_bootstrap_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "ws_emulator/observe/static/index.html",
        "ws_emulator/observe/static/dashboard.js",
        "ws_emulator/observe/static/dashboard.css",
        "ws_emulator/runtime/bootstrap.py",
        "ws_emulator/cli.py",
        "ws_emulator/py.typed",
    } <= set(names)
    dist_info = {n for n in names if n.startswith("ws_emulator-")}
    assert all(n.startswith("ws_emulator-0.1.0.dist-info/") for n in dist_info)
    assert "ws_emulator-0.1.0.dist-info/licenses/LICENSE" in dist_info
    # Every other file is the emulator's own package: no tests, fixtures, Parley layer or handlers.
    assert all(n.startswith("ws_emulator/") for n in set(names) - dist_info)
    assert not [n for n in names if "parley" in n.lower() or "/tests/" in n or "fixtures" in n]
    # Every source file of the package is in it.
    package = EMULATOR / "ws_emulator"
    sources = {
        f"ws_emulator/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sources == set(names) - dist_info


def test_wheel_metadata_names_the_tool_its_command_and_only_the_emulators_dependencies(wheel):
    with zipfile.ZipFile(wheel) as whl:
        meta = email.parser.Parser().parsestr(whl.read("ws_emulator-0.1.0.dist-info/METADATA").decode())
        entry_points = whl.read("ws_emulator-0.1.0.dist-info/entry_points.txt").decode()
    assert (meta["Name"], meta["Version"], meta["Requires-Python"]) == ("ws-emulator", "0.1.0", ">=3.11")
    assert meta["License-Expression"] == "MIT"
    assert "WebSocket" in meta["Summary"] and "SAM" in meta["Summary"]
    assert "Programming Language :: Python :: 3.11" in (meta.get_all("Classifier") or [])
    required = {
        re.split(r"[\[<>=;! ]", r, maxsplit=1)[0].lower() for r in meta.get_all("Requires-Dist") or []
    }
    assert required == {
        "moto",
        "boto3",
        "websockets",
        "pyyaml",
        "aws-sam-translator",
        "pyjwt",
        "watchfiles",
        "localstack-client",
    }
    assert "[console_scripts]\nws-emulator = ws_emulator.cli:main" in entry_points
    # The long description is emulator/README.md: a quick start for any template, not this project's.
    assert "pipx install ./emulator" in meta.get_payload()
    assert "parley" not in meta.as_string().lower()


def test_readme_quick_start_is_the_quickstart_fixture():
    readme = (EMULATOR / "README.md").read_text()
    template = re.search(r"```yaml\n(.*?)```", readme, re.S)
    handler = re.search(r"```python\n(.*?)```", readme, re.S)
    assert template and handler
    assert template.group(1) == (QUICKSTART / "template.yaml").read_text()
    assert handler.group(1) == (QUICKSTART / "echo" / "app.py").read_text()


IMPORT_ALL = """
import importlib, pkgutil, ws_emulator
names = [m.name for m in pkgutil.walk_packages(ws_emulator.__path__, "ws_emulator.")]
for name in names:
    if not name.endswith(("__main__", "bootstrap")):  # the command itself; an environment's script
        importlib.import_module(name)
import samtranslator.translator.translator, jwt, localstack_client.config, watchfiles  # imported lazily
print(len(names))
"""


def test_every_module_imports_with_the_declared_dependencies_alone(venv, tmp_path):
    count = _run(venv / "bin" / "python", "-c", IMPORT_ALL, cwd=tmp_path)
    assert int(count) == len(list((EMULATOR / "ws_emulator").rglob("*.py"))) - 1  # less __init__.py


def test_the_installed_command_runs_its_own_copy_and_serves_the_quick_start(venv, tmp_path):
    python = venv / "bin" / "python"
    where = _run(python, "-c", "import ws_emulator, moto; print(ws_emulator.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(venv)
    banner, reply = asyncio.run(_serve_and_echo(venv / "bin" / "ws-emulator", tmp_path))
    assert re.search(r"echo\s+-> EchoFunction\s+\(route response\)", banner)
    assert reply == {"action": "echo", "data": "from a fresh venv"}


async def _serve_and_echo(command: Path, cwd: Path) -> tuple[str, object]:
    proc = await asyncio.create_subprocess_exec(
        command,
        "serve",
        "--template",
        QUICKSTART / "template.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-watch",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=_clean_env(),
    )
    assert proc.stdout and proc.stderr
    try:
        lines: list[str] = []
        while not (lines and lines[-1].startswith("Ctrl-C stops")):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, f"ws-emulator exited early: {(await proc.stderr.read()).decode()}"
            lines.append(line)
        banner = "".join(lines)
        url = re.search(r"WebSocket\s+(ws://127\.0\.0\.1:\d+/prod)", banner)
        assert url, banner
        async with connect(url.group(1)) as ws:
            await ws.send(json.dumps({"action": "echo", "data": "from a fresh venv"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    return banner, reply
